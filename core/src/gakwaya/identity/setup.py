"""First-run setup: a one-time token that creates the first administrator."""

from __future__ import annotations

from typing import Any


def issue_setup_token(kernel: Any) -> str | None:
    return None
