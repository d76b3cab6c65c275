"""bench/api: latency and throughput of the API, and the idle memory of the processes.

Measures, with wrk on loopback, at 1, 50 and 200 concurrent connections:
- an authenticated list endpoint (``members_list`` with an API key, 50 rows a page);
- login (``auth_login``: argon2id verification, a new session row);
- a bare Litestar JSON endpoint on the same machine, as the baseline;
and the resident memory (RSS) of an idle ``gakwaya serve`` and ``gakwaya worker``.

Prints one JSON document. Usage (from the repository root):

    uv run python bench/api/run.py [--duration 10] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import services  # noqa: E402  (the same real servers the tests use)

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PASSWORD = "bench password that is long enough"
CONCURRENCY = (1, 50, 200)


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children, in KiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(FileNotFoundError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(url: str, connections: int, duration: int, **env: str) -> dict[str, float]:
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "report.lua"),
            url,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"BENCH_JSON (\{.*\})", out)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    return {
        "connections": connections,
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / seconds, 1),
        "failed": raw["socket_errors"] + raw["non_2xx"],
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
    }


def seed(env: dict[str, str]) -> str:
    """A user, an organization with 100 members, and a read API key; returns the key."""
    code = f"""
import os
from gakwaya.db.migrate import upgrade
from gakwaya.kernel import Kernel
from gakwaya.settings import load_settings
from gakwaya.db.models import User, Organization, Membership, ApiKey
from gakwaya.security.passwords import hash_password
from gakwaya.apikeys import keys
k = Kernel.create(load_settings())
upgrade(k.db.engine)
h = hash_password({PASSWORD!r})
with k.db.transaction() as db:
    org = Organization(slug="bench", name="Bench")
    db.add(org); db.flush()
    owner = None
    for i in range(100):
        u = User(email=f"user{{i}}@bench.example.com", name=f"User {{i}}", password_hash=h)
        db.add(u); db.flush()
        db.add(Membership(org_id=org.id, user_id=u.id, role="owner" if i == 0 else "developer"))
        owner = owner or u
    key = keys.generate()
    db.add(ApiKey(org_id=org.id, user_id=owner.id, name="bench", prefix=keys.display_prefix(key),
                  key_hash=keys.key_digest(key), scopes=["read"]))
print(key)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="gakwaya serve --workers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    stack = contextlib.ExitStack()
    with stack:
        data = Path(tempfile.mkdtemp(prefix="gakwaya-bench-"))
        stack.callback(shutil.rmtree, data, True)
        env = {
            **os.environ,
            "GAKWAYA_DATA_DIR": str(data),
            "GAKWAYA_LOG_LEVEL": "warning",
            # The bench hammers login from one address: lift the per-address limit.
            "GAKWAYA_LOGIN_MAX_FAILURES_IP": "1000000",
        }
        if args.database == "postgresql":
            admin = stack.enter_context(services.postgres_server())
            env["GAKWAYA_DATABASE_URL"] = admin
        key = seed(env)
        redis_url = stack.enter_context(services.redis_server())
        if args.workers > 1:
            env["GAKWAYA_REDIS_URL"] = redis_url
        port = services.free_port()
        serve = stack.enter_context(
            process(
                [
                    str(BIN / "gakwaya"),
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                env,
            )
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        time.sleep(3)
        serve_idle_rss = rss_kib(serve.pid)

        results: dict[str, object] = {
            "benchmark": "api",
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "database": args.database,
            "serve_workers": args.workers,
            "duration_seconds_per_run": args.duration,
        }
        list_url = f"{base}/api/v1/orgs/bench/members?limit=50"
        results["authenticated_list"] = [
            wrk(list_url, c, args.duration, BENCH_AUTH=f"Bearer {key}") for c in CONCURRENCY
        ]
        login_body = json.dumps({"email": "user1@bench.example.com", "password": PASSWORD})
        results["login"] = [
            wrk(
                f"{base}/api/v1/auth/login",
                c,
                args.duration,
                BENCH_METHOD="POST",
                BENCH_BODY=login_body,
            )
            for c in CONCURRENCY
        ]
        serve_after_rss = rss_kib(serve.pid)

        bport = services.free_port()
        stack.enter_context(
            process([sys.executable, str(HERE / "baseline_app.py"), str(bport)], env)
        )
        wait_http(f"http://127.0.0.1:{bport}/items")
        results["baseline_bare_litestar"] = [
            wrk(f"http://127.0.0.1:{bport}/items", c, args.duration) for c in CONCURRENCY
        ]

        worker = stack.enter_context(
            process([str(BIN / "gakwaya"), "worker"], {**env, "GAKWAYA_REDIS_URL": redis_url})
        )
        time.sleep(5)
        worker_alive = worker.poll() is None
        results["memory_kib"] = {
            "serve_idle": serve_idle_rss,
            "serve_after_load": serve_after_rss,
            "worker_idle": rss_kib(worker.pid) if worker_alive else None,
        }
        p99_200 = results["authenticated_list"][-1]["p99_ms"]  # type: ignore[index]
        results["targets"] = {
            "authenticated_list_p99_ms_at_200_under_50": p99_200 < 50,
            "serve_idle_rss_under_120_mb": serve_idle_rss < 120 * 1024
            if args.workers == 1
            else None,
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
