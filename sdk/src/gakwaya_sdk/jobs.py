"""Job declarations and the context a job function runs with.

A job function is ``def fn(ctx: JobContext, **arguments) -> JSON-able``. It
runs on a worker (``gakwaya worker`` with Redis) or in the panel's own process
(no Redis); its record (state, progress, logs, result, error) lives in the
database either way.

A job is ``queued``, then ``running``, and ends ``succeeded`` (the function
returned; its value is the result), ``failed`` (it raised: the error is the
exception's type and message, the traceback goes to the job's log) or
``cancelled`` (it raised :class:`JobCancelled`, or was cancelled before it
started). Arguments are a JSON object stored in clear and shown to the
organization's members: pass ids, never secrets. Log lines and errors pass
through a scrubber for passwords in URLs and ``password=…`` pairs, but a job
that handles other secrets must keep them out of what it logs or raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from gakwaya_sdk.context import Panel


class JobCancelled(Exception):
    """Raised inside a job when it has been asked to stop; the job ends ``cancelled``."""


class JobContext(Protocol):
    """What a running job may do besides its own work."""

    job_id: str
    org_id: int | None
    attempt: int
    #: The kernel's services (settings, events, jobs, providers).
    panel: Panel

    def log(self, line: str) -> None:
        """Append one line to the job's stored log."""

    def progress(self, percent: int) -> None:
        """Record progress, 0 to 100."""

    def cancelled(self) -> bool:
        """True when the job was asked to stop: someone cancelled it, it reached its
        ``timeout``, or its record was taken over after its worker was presumed dead.
        A cancel request reaches a worker within a heartbeat interval."""

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` when the job was asked to stop."""

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early and raising :class:`JobCancelled` when cancelled.

        Prefer it to ``time.sleep`` in a job: it is how a waiting job notices a
        cancel request or its time limit."""

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from another thread) as soon as a cancel is requested,
        e.g. to kill a child process the job is waiting for."""


class JobType(msgspec.Struct, frozen=True, kw_only=True):
    """A kind of job a plugin can enqueue.

    ``retry_safe`` says the job may run again from the start after its worker
    died; the reaper then retries it up to ``max_attempts`` times (attempts
    count from 1, see ``JobContext.attempt``), otherwise it marks it failed. A
    job that raises is never retried: only a lost worker is.

    ``timeout`` is in seconds: at that point the job is asked to stop (as for a
    cancel) and, if it raises :class:`JobCancelled`, ends ``failed`` with
    "timed out"; on a ``gakwaya worker`` one that ignores the request is
    interrupted a minute later.
    """

    name: str
    func: Callable[..., Any]
    description: str = ""
    retry_safe: bool = False
    max_attempts: int = 3
    timeout: int = 3600
