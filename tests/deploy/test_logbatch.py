"""A deployment's log written in batches (:mod:`gakwaya.deploy.logbatch`): every line
reaches the job's log, in order, scrubbed, stamped with when it was produced, and a
follower sees it without the deployment having to end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog
from gakwaya.deploy.logbatch import LogBatch
from gakwaya.jobs.context import RunningJob, Scrubber
from gakwaya.kernel import Kernel

#: A secret this job handles: no stored line may show it.
SECRET = "s3cr3t-value-7f1e2d"


@pytest.fixture
def job(kernel: Kernel) -> RunningJob:
    """A running job owned by this process, as the runner makes one."""
    with kernel.db.transaction() as db:
        db.add(
            Job(
                id="job-logbatch",
                type="deploy.run",
                arguments={},
                state="running",
                attempts=1,
                max_attempts=1,
                retry_safe=False,
                queue="default",
                created_by="test",
                created_at=utcnow(),
                worker_id=kernel.process_id,
            )
        )
    return RunningJob(
        kernel,
        job_id="job-logbatch",
        org_id=None,
        attempt=1,
        arguments={},
        scrub=Scrubber([SECRET]),
    )


def stored(kernel: Kernel) -> list[str]:
    with kernel.db.session() as db:
        return list(db.scalars(select(JobLog.line).order_by(JobLog.id)))


@pytest.fixture
def commits(kernel: Kernel) -> Iterator[list[int]]:
    """Counts the database's commits (one per transaction that wrote)."""
    seen: list[int] = []

    def on_commit(_conn: object) -> None:
        seen.append(1)

    event.listen(kernel.db.engine, "commit", on_commit)
    yield seen
    event.remove(kernel.db.engine, "commit", on_commit)


def test_lines_are_held_then_written_in_one_transaction_in_order(
    kernel: Kernel, job: RunningJob, commits: list[int]
) -> None:
    batch = LogBatch(job, delay=3600)
    lines = [f"Step {n}/40 : RUN something" for n in range(40)]
    for line in lines:
        batch(line)
    assert stored(kernel) == []  # held: neither the timer nor the size limit was reached
    before = len(commits)
    batch.flush()
    assert stored(kernel) == lines
    assert len(commits) - before == 1


def test_a_full_batch_is_written_at_once(kernel: Kernel, job: RunningJob) -> None:
    batch = LogBatch(job, delay=3600, max_lines=3)
    for n in range(7):
        batch(f"line {n}")
    assert stored(kernel) == [f"line {n}" for n in range(6)]
    batch.close()
    assert stored(kernel) == [f"line {n}" for n in range(7)]


def test_held_lines_reach_a_follower_without_a_flush(kernel: Kernel, job: RunningJob) -> None:
    """A step that prints a line and then goes quiet (a long build step) shows it."""
    batch = LogBatch(job, delay=0.05)
    batch("Step 3/9 : RUN pip install -r requirements.txt")
    deadline = time.monotonic() + 30
    while not stored(kernel) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stored(kernel) == ["Step 3/9 : RUN pip install -r requirements.txt"]
    batch.close()


def test_lines_keep_the_time_they_were_produced(kernel: Kernel, job: RunningJob) -> None:
    batch = LogBatch(job, delay=3600)
    before = utcnow()
    batch("early line")
    after = utcnow()
    time.sleep(0.05)  # the batch is written later than the line was produced
    written = utcnow()
    batch.close()
    with kernel.db.session() as db:
        at = db.scalar(select(JobLog.created_at))
    assert at is not None
    assert before <= at.replace(tzinfo=before.tzinfo) <= after < written


def test_batched_lines_are_scrubbed(kernel: Kernel, job: RunningJob) -> None:
    with LogBatch(job, delay=3600) as batch:
        batch(f"cloning with token {SECRET}")
        batch("https://user:hunter2-pass@example.com/repo.git")
    lines = stored(kernel)
    assert len(lines) == 2
    assert all(SECRET not in line and "hunter2-pass" not in line for line in lines)


def test_after_close_lines_are_written_at_once(kernel: Kernel, job: RunningJob) -> None:
    batch = LogBatch(job, delay=3600)
    batch("held")
    batch.close()
    batch("after the end")
    assert stored(kernel) == ["held", "after the end"]


def test_a_failed_step_still_writes_its_lines(kernel: Kernel, job: RunningJob) -> None:
    with pytest.raises(RuntimeError, match="build failed"), LogBatch(job, delay=3600) as batch:
        batch("Step 2/9 : RUN false")
        raise RuntimeError("build failed")
    assert stored(kernel) == ["Step 2/9 : RUN false"]


def test_a_job_that_lost_its_row_writes_nothing(kernel: Kernel, job: RunningJob) -> None:
    """The reaper gave the job to another attempt: this one's lines must not mix in."""
    batch = LogBatch(job, delay=3600)
    batch("from the old attempt")
    with kernel.db.transaction() as db:
        db.execute(update(Job).where(Job.id == job.job_id).values(attempts=2))
    batch.close()
    assert stored(kernel) == []
