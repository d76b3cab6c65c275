"""Reading jobs for the API and the CLI (enqueue and cancel live on ``kernel.jobs``)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gakwaya.db.models import Job, JobLog
from gakwaya.errors import FieldError, NotFound
from gakwaya.jobs.queue import JOB_ID, JOB_ID_RULE, STATES
from gakwaya.jobs.schemas import JobDetail, JobLogLine, JobSummary
from gakwaya.pagination import Page

#: Log lines returned with one job.
LOG_LIMIT = 1000
TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
TYPE_RULE = "a job type name: 1 to 100 lowercase letters, digits, '.', '-' and '_'"
_CURSOR = re.compile(r"^(\d{1,18})-([0-9a-f]{32})$")
_CURSOR_RULE = "must be a value returned as next_cursor by this list"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise FieldError("job_id", JOB_ID_RULE)
    return job_id


def _encode_cursor(job: Job) -> str:
    delta = job.created_at - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}-{job.id}"


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    m = _CURSOR.match(cursor)
    if not m:
        raise FieldError("cursor", _CURSOR_RULE)
    try:
        at = _EPOCH + dt.timedelta(microseconds=int(m.group(1)))
    except OverflowError:
        raise FieldError("cursor", _CURSOR_RULE) from None
    return at, m.group(2)


def summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        type=job.type,
        state=job.state,
        progress=job.progress,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        retry_safe=job.retry_safe,
        cancel_requested=job.cancel_requested,
        queue=job.queue,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
    )


def list_jobs(
    db: Session,
    org_id: int,
    *,
    state: str | None = None,
    job_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[JobSummary]:
    """The organization's jobs, newest first (``created_at``, then id)."""
    query = select(Job).where(Job.org_id == org_id)
    if state:
        if state not in STATES:
            raise FieldError("state", "one of " + ", ".join(STATES))
        query = query.where(Job.state == state)
    if job_type:
        if not TYPE_NAME.match(job_type):
            raise FieldError("type", TYPE_RULE)
        query = query.where(Job.type == job_type)
    if cursor:
        at, last_id = _decode_cursor(cursor)
        query = query.where((Job.created_at < at) | ((Job.created_at == at) & (Job.id < last_id)))
    rows = list(db.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    items = rows[:limit]
    next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
    return Page(items=[summary(j) for j in items], next_cursor=next_cursor)


def show_job(db: Session, org_id: int, job_id: str) -> JobDetail:
    check_job_id(job_id)
    job = db.scalars(select(Job).where(Job.id == job_id, Job.org_id == org_id)).first()
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    total = db.scalar(select(func.count()).select_from(JobLog).where(JobLog.job_id == job_id)) or 0
    lines = list(
        db.scalars(
            select(JobLog)
            .where(JobLog.job_id == job_id)
            .order_by(JobLog.id.desc())
            .limit(LOG_LIMIT)
        )
    )
    lines.reverse()
    base = summary(job)
    return JobDetail(
        **{f: getattr(base, f) for f in base.__struct_fields__},
        arguments=dict(job.arguments or {}),
        result=job.result,
        logs=[JobLogLine(at=line.created_at, line=line.line) for line in lines],
        logs_truncated=total > len(lines),
    )


def log_after(
    db: Session, job_id: str | None, after: int = 0, limit: int | None = None
) -> list[tuple[int, str]]:
    """A job's log lines with an id above ``after``, oldest first, as (id, line): what a
    follower (a live stream, ``--wait``) has not printed yet."""
    if not job_id:
        return []
    query = (
        select(JobLog.id, JobLog.line)
        .where(JobLog.job_id == job_id, JobLog.id > after)
        .order_by(JobLog.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [(int(i), str(line)) for i, line in db.execute(query)]
