"""Helpers shared by gakwaya-git's tests (a module name no other test tree uses)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gakwaya.testing.gitserver import KeyPair, basic, git, make_key

TOKEN = "tok-9f2c1e7b5a3d4c6e8f0a1b2c3d4e5f60"
OTHER_USER = "ci-user"
OTHER_TOKEN = "tok-other-71c2a9e4b0d35f68"


@dataclass
class Lines:
    """A ``log`` function that keeps what it was given."""

    lines: list[str] = field(default_factory=list)
    on_line: Callable[[str], None] | None = None

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def canary_path() -> Path:
    """A file in /tmp that an injected command would create; it must never appear."""
    return Path("/tmp") / f"gakwaya-git-canary-{os.getpid()}-{time.time_ns()}"


__all__ = [
    "OTHER_TOKEN",
    "OTHER_USER",
    "TOKEN",
    "KeyPair",
    "Lines",
    "basic",
    "canary_path",
    "git",
    "make_key",
    "tree",
]
