"""The kernel's own job types. ``core.prune`` keeps the job and event tables small.

Run it with ``gakwaya jobs prune`` (from cron or a systemd timer) or enqueue it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog, StoredEvent
from gakwaya_sdk.jobs import JobContext, JobType

#: Rows deleted per transaction, so a large backlog never holds a long write lock.
CHUNK = 500


def prune(
    ctx: JobContext, job_days: int | None = None, event_days: int | None = None
) -> dict[str, Any]:
    """Delete finished jobs (with their logs) and events older than the retention.

    ``job_days`` / ``event_days`` default to the ``job_retention_days`` and
    ``event_retention_days`` settings.
    """
    from gakwaya.jobs.runner import current_kernel

    kernel = current_kernel(ctx)
    settings = kernel.settings
    job_days = int(job_days if job_days is not None else settings.job_retention_days)
    event_days = int(event_days if event_days is not None else settings.event_retention_days)
    if job_days < 1 or event_days < 1:
        raise ValueError("job_days and event_days must be at least 1")
    now = utcnow()
    job_cutoff = now - dt.timedelta(days=job_days)
    event_cutoff = now - dt.timedelta(days=event_days)
    ctx.log(f"deleting jobs finished before {job_cutoff:%Y-%m-%d %H:%M} UTC")
    jobs = logs = 0
    while True:
        ctx.check_cancelled()
        with kernel.db.transaction() as db:
            ids = list(
                db.scalars(
                    select(Job.id)
                    .where(
                        Job.state.in_(("succeeded", "failed", "cancelled")),
                        Job.finished_at < job_cutoff,
                    )
                    .limit(CHUNK)
                )
            )
            if not ids:
                break
            logs += _count(db.execute(delete(JobLog).where(JobLog.job_id.in_(ids))))
            jobs += _count(db.execute(delete(Job).where(Job.id.in_(ids))))
    ctx.progress(50)
    ctx.log(f"deleted {jobs} job(s) and {logs} log line(s)")
    ctx.log(f"deleting events stored before {event_cutoff:%Y-%m-%d %H:%M} UTC")
    events = 0
    while True:
        ctx.check_cancelled()
        with kernel.db.transaction() as db:
            event_ids = list(
                db.scalars(
                    select(StoredEvent.id).where(StoredEvent.created_at < event_cutoff).limit(CHUNK)
                )
            )
            if not event_ids:
                break
            events += _count(db.execute(delete(StoredEvent).where(StoredEvent.id.in_(event_ids))))
    ctx.log(f"deleted {events} event(s)")
    return {"jobs_deleted": jobs, "job_logs_deleted": logs, "events_deleted": events}


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


JOB_TYPES = [
    JobType(
        name="core.prune",
        func=prune,
        description="Delete finished jobs and stored events older than the retention settings",
        retry_safe=True,
        max_attempts=3,
        timeout=3600,
    )
]
