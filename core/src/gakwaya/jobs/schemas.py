"""API shapes of jobs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class JobLogLine(msgspec.Struct, kw_only=True):
    at: dt.datetime
    line: str


class JobSummary(msgspec.Struct, kw_only=True):
    id: str
    type: str
    #: queued, running, succeeded, failed or cancelled.
    state: str
    #: 0 to 100, as the job reported it.
    progress: int
    attempts: int
    max_attempts: int
    retry_safe: bool
    cancel_requested: bool
    queue: str
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    #: Why it failed: the error's type and message, or how its worker was lost.
    error: str | None


class JobDetail(JobSummary, kw_only=True):
    arguments: dict[str, Any]
    #: What the job returned (JSON), once it succeeded.
    result: Any
    #: The newest log lines, oldest first (at most ``LOG_LIMIT``).
    logs: list[JobLogLine]
    #: True when older lines were left out of ``logs``.
    logs_truncated: bool
