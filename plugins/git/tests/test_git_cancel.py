"""Cancellation: before anything runs, and while git is stuck in the middle of a fetch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gakwaya_git.provider import GitSource
from gakwaya_git_testlib import TOKEN, Lines
from gakwaya_sdk.providers import ProviderError, SourceSpec

Make = Callable[..., GitSource]


def _git_processes_in(path: Path) -> list[int]:
    """Processes whose working directory is ``path`` (git runs with cwd = dest)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(path):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_cancelled_before_start_runs_nothing(
    make_source: Make, https_server: Any, dest: Path, private_tmp: Path
) -> None:
    before = len(https_server.server.requests)
    spec = SourceSpec(url=https_server.url(), ref="main", credentials={"https_token": TOKEN})
    with pytest.raises(ProviderError, match=r"^cancelled$"):
        make_source().fetch(spec=spec, dest=str(dest), log=Lines(), cancelled=lambda: True)
    assert len(https_server.server.requests) == before
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


def test_cancelled_while_the_server_stalls_mid_fetch(
    make_source: Make, https_server: Any, dest: Path, private_tmp: Path
) -> None:
    # The /stall/ server answers the ref advertisement and then never sends the pack:
    # git is waiting inside the fetch when cancelled() turns true.
    server = https_server.server
    server.stalled.clear()
    spec = SourceSpec(
        url=https_server.url(mode="stall"), ref="main", credentials={"https_token": TOKEN}
    )
    log = Lines()
    with pytest.raises(ProviderError, match=r"^cancelled$"):
        make_source().fetch(spec=spec, dest=str(dest), log=log, cancelled=server.stalled.is_set)
    assert server.stalled.is_set()
    # git and its helpers were killed, what it had written is gone, and so is the
    # private directory.
    assert _git_processes_in(dest) == []
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []
    assert TOKEN not in log.text
