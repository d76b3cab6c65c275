"""Run one git command through GitPython, watching for cancellation.

GitPython starts the process (an argument list, never a shell); we keep the handle
so a cancelled deployment or a job past its time limit stops git at once: git and
its helpers (``git-remote-https``, ``ssh``, ``index-pack``) run in a process group
of their own, killed together.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import git

from gakwaya_sdk.providers import CancelledFn, LogFn, ProviderError

#: How many of git's last stderr lines an error message quotes.
TAIL_LINES = 12
#: Seconds between two looks at ``cancelled()`` while git runs.
POLL_SECONDS = 0.1


class Cancelled(ProviderError):
    """The operation was cancelled; its message is ``cancelled``."""

    def __init__(self) -> None:
        super().__init__("cancelled")


class GitFailed(ProviderError):
    """Git exited with an error; ``tail`` holds its last stderr lines (scrubbed)."""

    def __init__(self, message: str, tail: str) -> None:
        super().__init__(message)
        self.tail = tail


def _pump(stream: IO[bytes], sink: Callable[[str], None]) -> None:
    # Progress meters end in "\r"; a line is whatever ends in "\r" or "\n".
    pending = b""
    for chunk in iter(lambda: stream.read1(4096), b""):  # type: ignore[attr-defined]
        pending += chunk
        while True:
            cut = min((i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0), default=-1)
            if cut < 0:
                break
            line, pending = pending[:cut], pending[cut + 1 :]
            sink(line.decode("utf-8", "replace"))
    if pending:
        sink(pending.decode("utf-8", "replace"))


def _wait_exit(pid: int, exited: threading.Event) -> None:
    """Set ``exited`` as soon as git exits, without reaping it.

    Why not ``proc.wait(timeout=…)``: with a timeout, Python polls with sleeps of up
    to 0.05 s, which a fetch of 0.1 s pays in full. ``WNOWAIT`` leaves git a zombie
    until the caller reaps it, so its process group id cannot be reused meanwhile
    and :func:`_kill_group` stays safe."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    exited.set()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Called only while git is not yet reaped (at most a zombie), so its group id is
    # still its own.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_git(
    args: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    scrub: Callable[[str], str],
    cancelled: CancelledFn,
    log: LogFn | None = None,
    what: str = "git",
) -> str:
    """Run ``git <args>`` in ``cwd``; return its standard output.

    Each stderr line goes to ``log`` (scrubbed) as it comes. Raises :class:`Cancelled`
    when ``cancelled()`` turns true (git is killed first) and :class:`GitFailed`, with
    the scrubbed tail of stderr, when git fails."""
    if cancelled():
        raise Cancelled()
    command = ["git", *args]
    try:
        handle = git.Git(cwd).execute(
            command, as_process=True, env=dict(env), start_new_session=True
        )
    except git.GitCommandNotFound:
        raise ProviderError("git is not installed on the panel's host") from None
    proc = handle.proc
    assert proc is not None and proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    out: list[bytes] = []
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def drain() -> None:
        # In the caller's thread: its log function may hold thread-bound state.
        while True:
            try:
                line = scrub(lines.get_nowait().rstrip())
            except queue.Empty:
                return
            if line:
                tail.append(line)
                if log is not None:
                    log(line)

    exited = threading.Event()
    readers = [
        threading.Thread(target=lambda: out.append(stdout.read()), daemon=True),
        threading.Thread(target=_pump, args=(stderr, lines.put), daemon=True),
    ]
    for reader in readers:
        reader.start()
    threading.Thread(target=_wait_exit, args=(proc.pid, exited), daemon=True).start()
    was_cancelled = False
    try:
        while not exited.wait(timeout=POLL_SECONDS):
            drain()
            if cancelled():
                was_cancelled = True
                _kill_group(proc)
        proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        for reader in readers:
            reader.join()
        stdout.close()
        stderr.close()
    drain()
    if was_cancelled or (proc.returncode != 0 and cancelled()):
        raise Cancelled()
    if proc.returncode != 0:
        text = "\n".join(tail)
        message = f"{what} failed (git exit status {proc.returncode})"
        raise GitFailed(f"{message}: {text}" if text else message, text)
    return b"".join(out).decode("utf-8", "replace")
