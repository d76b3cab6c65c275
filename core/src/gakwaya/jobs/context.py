"""The context a job function runs with (the kernel's :class:`gakwaya_sdk.jobs.JobContext`).

Every write a job makes (log lines, progress) is guarded by ownership: the job
row must still be ``running`` on this worker at this attempt. A job whose row
was taken over (the reaper decided its worker was dead and retried or failed
it) stops writing and is asked to stop, so a slow zombie never mixes its lines
into the next attempt.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog
from gakwaya_sdk.context import Panel
from gakwaya_sdk.jobs import JobCancelled

if TYPE_CHECKING:
    from gakwaya.jobs.runner import Heartbeat
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.jobs")

#: Longest stored log line and error message; longer ones are cut with a marker.
MAX_LINE = 8000
MAX_ERROR = 2000

_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@\s/]*@"
)
_SECRET_PAIRS = re.compile(
    r"(?i)\b(?P<key>password|passwd|secret|token|api[_-]?key|access[_-]?key)"
    r"(?P<sep>\s*[=:]\s*)(?P<value>[^\s,;&'\"]+)"
)


class Scrubber:
    """Removes what must never reach a stored log line or error message: the
    installation's own secrets (secret key, database and Redis passwords), passwords
    inside URLs, and ``password=…``-style pairs. Jobs that handle other secrets
    still scrub them themselves; this is the safety net."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def for_kernel(cls, kernel: Kernel) -> Scrubber:
        settings = kernel.settings
        values = [settings.secret_key]
        for url in (settings.database_url, settings.redis_url):
            if url:
                try:
                    password = urlsplit(url).password
                except ValueError:
                    password = None
                if password:
                    values.append(password)
        return cls(values)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)
        return _SECRET_PAIRS.sub(r"\g<key>\g<sep>***", text)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " …[truncated]"


def _panel_of(kernel: Kernel) -> Panel:
    panel = kernel.plugins.panel
    if panel is None:  # the kernel sets it before loading plugins; anything else is a bug
        raise RuntimeError("the kernel has no panel")
    return panel


class RunningJob:
    """One attempt of one job, in the process that claimed it."""

    def __init__(
        self,
        kernel: Kernel,
        *,
        job_id: str,
        org_id: int | None,
        attempt: int,
        arguments: dict[str, object],
        scrub: Scrubber,
    ) -> None:
        self.kernel = kernel
        self.job_id = job_id
        self.org_id = org_id
        self.attempt = attempt
        self.arguments = arguments
        self.scrub = scrub
        self.worker_id = kernel.process_id
        #: The kernel's services as plugins see them (``gakwaya_sdk.jobs.JobContext.panel``).
        self.panel: Panel = _panel_of(kernel)
        #: The heartbeat thread watching this attempt (set by the runner).
        self.heartbeat: Heartbeat | None = None
        self._stop = threading.Event()
        #: Why the job was asked to stop: "cancel", "timeout" or "lost" (first one wins).
        self.stop_reason: str | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    # The JobContext protocol -----------------------------------------------------------

    def log(self, line: str) -> None:
        if self.stop_reason == "lost":
            return
        text = clip(self.scrub(str(line).rstrip("\n")), MAX_LINE)
        with self.kernel.db.transaction() as db:
            if self._owned(db):
                db.add(JobLog(job_id=self.job_id, line=text, created_at=utcnow()))

    def log_lines(self, lines: Sequence[tuple[datetime, str]]) -> None:
        """Several lines in one transaction, each stamped with when it was produced:
        what a job batching a chatty provider's output writes (one transaction per
        line costs a build measurable time). Guarded and scrubbed as :meth:`log`."""
        if self.stop_reason == "lost" or not lines:
            return
        rows = [(at, clip(self.scrub(str(line).rstrip("\n")), MAX_LINE)) for at, line in lines]
        with self.kernel.db.transaction() as db:
            if self._owned(db):
                db.add_all(
                    JobLog(job_id=self.job_id, line=text, created_at=at) for at, text in rows
                )

    def progress(self, percent: int) -> None:
        if self.stop_reason == "lost":
            return
        value = max(0, min(100, int(percent)))
        with self.kernel.db.transaction() as db:
            db.execute(
                self.owned_update().values(progress=value),
                execution_options={"synchronize_session": False},
            )

    def cancelled(self) -> bool:
        return self._stop.is_set()

    def check_cancelled(self) -> None:
        if self._stop.is_set():
            raise JobCancelled(self._describe_stop())

    def sleep(self, seconds: float) -> None:
        if self._stop.wait(max(0.0, float(seconds))):
            raise JobCancelled(self._describe_stop())

    def on_cancel(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._callbacks.append(callback)
                return
        self._call(callback)

    # Kernel side ----------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Ask the job to stop (from the heartbeat thread or a local cancel); fires the
        ``on_cancel`` callbacks once."""
        with self._lock:
            if self._stop.is_set():
                if reason == "lost":  # ownership lost overrides: stop writing at once
                    self.stop_reason = "lost"
                return
            self.stop_reason = reason
            self._stop.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._call(callback)

    def owned_update(self) -> Update:
        """``UPDATE jobs`` limited to this attempt still owning its row."""
        return update(Job).where(
            Job.id == self.job_id,
            Job.state == "running",
            Job.worker_id == self.worker_id,
            Job.attempts == self.attempt,
        )

    def _owned(self, db: Session) -> bool:
        row = db.execute(
            select(Job.state, Job.worker_id, Job.attempts).where(Job.id == self.job_id)
        ).first()
        return row is not None and tuple(row) == ("running", self.worker_id, self.attempt)

    def _call(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("job %s: on_cancel callback raised", self.job_id)

    def _describe_stop(self) -> str:
        return {
            "cancel": "cancel requested",
            "timeout": "time limit reached",
            "lost": "the job was taken over (its worker was presumed dead)",
        }.get(self.stop_reason or "", "stop requested")
