"""Render bench/api results (JSON files) as the tables quoted in docs/benchmarks.md.

uv run python bench/api/to_markdown.py bench/results/api-sqlite-1worker.json ...
"""

from __future__ import annotations

import json
import sys
from typing import Any


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| clients | req/s | p50 ms | p90 ms | p99 ms | failed |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['connections']} | {r['requests_per_second']} | {r['p50_ms']} | "
            f"{r['p90_ms']} | {r['p99_ms']} | {r['failed']} |"
        )
    return "\n".join(out)


def main() -> None:
    for path in sys.argv[1:]:
        with open(path) as fh:
            data = json.load(fh)
        mem = data["memory_kib"]
        print(f"### `{path}`: {data['serve_workers']} server process(es), {data['database']}")
        print(f"\nMeasured {data['when']}, {data['duration_seconds_per_run']} s per run.\n")
        for key, title in (
            ("authenticated_list", "Authenticated list (`members_list`, 50 rows, API key)"),
            ("login", "Login (`auth_login`)"),
            ("baseline_bare_litestar", "Baseline: bare Litestar JSON endpoint"),
        ):
            print(f"{title}:\n\n{table(data[key])}\n")
        print(
            f"Memory (RSS): idle `serve` {mem['serve_idle'] // 1024} MiB, after the load "
            f"{mem['serve_after_load'] // 1024} MiB; idle `gakwaya worker` "
            f"{(mem['worker_idle'] or 0) // 1024} MiB.\n"
        )


if __name__ == "__main__":
    main()
