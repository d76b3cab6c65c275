"""Polling with a deadline, and reading job records, for the job-queue tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from gakwaya.db.models import Job, JobLog
from gakwaya.kernel import Kernel

T = TypeVar("T")

FINISHED = ("succeeded", "failed", "cancelled")


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last value {value!r})")
        time.sleep(0.05)


def job(kernel: Kernel, job_id: str) -> Job:
    found = kernel.jobs.get(job_id)
    assert found is not None, job_id
    return found


def logs(kernel: Kernel, job_id: str) -> list[str]:
    with kernel.db.session() as db:
        return list(
            db.scalars(select(JobLog.line).where(JobLog.job_id == job_id).order_by(JobLog.id))
        )


def wait_state(kernel: Kernel, job_id: str, *states: str, timeout: float = 60.0) -> Job:
    wanted = states or FINISHED
    return wait_for(
        lambda: (j := job(kernel, job_id)).state in wanted and j,
        timeout=timeout,
        what=f"job {job_id} to be {'/'.join(wanted)}",
    )


def wait_log(kernel: Kernel, job_id: str, fragment: str, timeout: float = 60.0) -> list[str]:
    return wait_for(
        lambda: (lines := logs(kernel, job_id)) and any(fragment in x for x in lines) and lines,
        timeout=timeout,
        what=f"log line {fragment!r} of job {job_id}",
    )
