"""docs/plugins/author-guide.md, replayed on the project ``gakwaya plugin new`` writes.

The guide marks each code block it wants checked with an HTML comment:
``<!-- scaffold: FILE -->`` quotes the generated FILE verbatim; ``<!-- append: FILE -->``
is added to the end of FILE; ``<!-- extend: FILE -->`` inserts the block's other lines
after the line equal to its first. Replaying them in order, then running the guide's
``manifest write`` and the project's tests, proves the walk-through works as written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gakwaya.scaffold import create, render

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins" / "author-guide.md"
NAME = "status-ping"
BLOCK = re.compile(r"<!-- (scaffold|append|extend): (\S+) -->\n```[a-z]*\n(.*?)```", re.S)
#: The scaffold's own tests, then the one the guide adds.
GENERATED_TESTS, GUIDE_TESTS = 8, 2


def _blocks() -> list[tuple[str, str, str]]:
    return BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def test_quotes_of_the_scaffold_are_verbatim() -> None:
    files = render(NAME)
    quoted = [(path, text) for kind, path, text in _blocks() if kind == "scaffold"]
    assert len(quoted) >= 4
    for path, text in quoted:
        assert text in files[path], f"the guide's quote of {path} differs from the scaffold"
    assert f"uv run pytest                             # {GENERATED_TESTS} passed" in (
        GUIDE.read_text(encoding="utf-8")
    )


def test_the_walk_through_runs(tmp_path: Path) -> None:
    project = create(NAME, tmp_path)
    changed = 0
    for kind, path, text in _blocks():
        target = project / path
        if kind == "append":
            target.write_text(target.read_text() + "\n\n" + text)
        elif kind == "extend":
            first, rest = text.split("\n", 1)
            content = target.read_text()
            assert content.count(first + "\n") == 1, f"{first!r} is not once in {path}"
            target.write_text(content.replace(first + "\n", first + "\n" + rest, 1))
        else:
            continue
        changed += 1
    assert changed >= 4

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    wrote = run("-m", "gakwaya_sdk", "manifest", "write")
    assert wrote.returncode == 0, wrote.stderr
    packaged = (project / "src" / "gakwaya_status_ping" / "gakwaya-plugin.toml").read_text()
    assert 'provides = [\n    "notifier:status-ping",\n]' in packaged
    # One name: the distribution's is the manifest's (and the entry point's).
    assert 'name = "gakwaya-status-ping"' in packaged
    checked = run("-m", "gakwaya_sdk", "manifest", "check")
    assert checked.returncode == 0, checked.stderr
    assert f"manifest check      # {checked.stdout.strip()}\n" in GUIDE.read_text(encoding="utf-8")
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(rf"\b{GENERATED_TESTS + GUIDE_TESTS} passed\b", tests.stdout), tests.stdout
