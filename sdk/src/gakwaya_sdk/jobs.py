"""Job declarations and the context a job function runs with.

A job function is ``def fn(ctx: JobContext, **arguments) -> JSON-able``. It
runs on a worker (``gakwaya worker`` with Redis) or in the panel's own process
(no Redis); its record (state, progress, logs, result, error) lives in the
database either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec


class JobCancelled(Exception):
    """Raised inside a job when it has been asked to stop; the job ends ``cancelled``."""


class JobContext(Protocol):
    """What a running job may do besides its own work."""

    job_id: str
    org_id: int | None
    attempt: int

    def log(self, line: str) -> None:
        """Append one line to the job's stored log."""

    def progress(self, percent: int) -> None:
        """Record progress, 0 to 100."""

    def cancelled(self) -> bool:
        """True when someone asked to cancel this job."""

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` when the job was asked to stop."""

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early and raising :class:`JobCancelled` when cancelled."""

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from another thread) as soon as a cancel is requested,
        e.g. to kill a child process the job is waiting for."""


class JobType(msgspec.Struct, frozen=True, kw_only=True):
    """A kind of job a plugin can enqueue.

    ``retry_safe`` says the job may run again from the start after its worker
    died; the reaper then retries it up to ``max_attempts`` times, otherwise it
    marks it failed. ``timeout`` is in seconds.
    """

    name: str
    func: Callable[..., Any]
    description: str = ""
    retry_safe: bool = False
    max_attempts: int = 3
    timeout: int = 3600
