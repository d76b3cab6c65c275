"""The in-process backend (no Redis): running, failing, cancelling, reaping, pruning."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog, StoredEvent
from gakwaya.errors import Conflict, NotFound
from gakwaya.jobs import runner
from gakwaya.jobs.queue import InvalidJobArguments, UnknownJobType
from gakwaya.kernel import Kernel
from tests.jobs import jobplugin
from tests.jobs.helpers import job, logs, wait_for, wait_log, wait_state


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"plugin_modules": ["tests.jobs.jobplugin"]}


@pytest.fixture
def running(kernel: Kernel) -> Iterator[Kernel]:
    """The kernel with its job runner and reaper started, as `gakwaya serve` has it."""
    kernel.jobs.start()
    yield kernel
    kernel.jobs.stop()


def events_of(kernel: Kernel, type_name: str) -> list[dict[str, Any]]:
    with kernel.db.session() as db:
        return [
            e.payload for e in db.scalars(select(StoredEvent).where(StoredEvent.type == type_name))
        ]


def published(kernel: Kernel, type_name: str) -> list[dict[str, Any]]:
    """The ``type_name`` events once there is one: the runner publishes a job's outcome
    just after committing its state, so a test that saw the state may be first."""
    return wait_for(lambda: events_of(kernel, type_name), what=f"a {type_name} event")


def dead_pid() -> int:
    """A pid that is certainly not running: a child we started and reaped."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_success_records_logs_progress_result_and_event(running: Kernel) -> None:
    queued = running.jobs.enqueue(
        "test.echo", org_id=None, arguments={"name": "x", "n": 2}, created_by="tester"
    )
    assert queued.state == "queued" and queued.attempts == 0 and len(queued.id) == 32
    done = wait_state(running, queued.id)
    assert done.state == "succeeded", done.error
    assert done.result == {"echo": {"name": "x", "n": 2}, "attempt": 1}
    assert done.progress == 100
    assert done.attempts == 1
    assert done.worker_id == running.process_id
    assert done.started_at is not None and done.finished_at is not None
    assert done.created_by == "tester"
    assert logs(running, queued.id) == ["hello", "half way"]
    assert [e["job_id"] for e in published(running, "job.succeeded")] == [queued.id]


def test_failure_records_error_and_event_and_logs_the_traceback_for_the_operator(
    running: Kernel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gakwaya.jobs")
    queued = running.jobs.enqueue("test.fail", arguments={"message": "disk on fire"})
    done = wait_state(running, queued.id)
    assert done.state == "failed"
    assert done.error == "RuntimeError: disk on fire"
    # The job's log, which members read, says what failed in one line, no traceback.
    lines = logs(running, queued.id)
    assert lines == ["about to fail", "failed: RuntimeError: disk on fire"]
    # The server's log has the traceback, under the job's id.
    (record,) = [r for r in caplog.records if queued.id in r.getMessage()]
    assert "Traceback" in record.getMessage() and "disk on fire" in record.getMessage()
    failed = published(running, "job.failed")
    assert [(e["job_id"], e["error"]) for e in failed] == [
        (queued.id, "RuntimeError: disk on fire")
    ]


def test_a_result_that_is_not_json_fails_the_job(running: Kernel) -> None:
    done = wait_state(running, running.jobs.enqueue("test.bad_result").id)
    assert done.state == "failed"
    assert "not JSON" in (done.error or "")


def test_errors_and_logs_do_not_keep_passwords(
    running: Kernel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gakwaya.jobs")
    url = "postgresql://app:hunter2-very-secret@db.internal/app"
    done = wait_state(running, running.jobs.enqueue("test.leak", arguments={"url": url}).id)
    assert done.state == "failed"
    assert done.error is not None and done.error.startswith("ConnectionError: cannot reach")
    server_log = [r.getMessage() for r in caplog.records if done.id in r.getMessage()]
    assert server_log and "Traceback" in server_log[0]  # the operator's copy, scrubbed too
    stored = [done.error, *logs(running, done.id), *server_log]
    assert all("hunter2-very-secret" not in text for text in stored)
    assert "postgresql://app:***@db.internal/app" in done.error
    secret = running.settings.secret_key
    done = wait_state(running, running.jobs.enqueue("test.leak", arguments={"url": secret}).id)
    assert secret not in (done.error or "") and "***" in (done.error or "")


def test_enqueue_rejects_unknown_types_and_non_json_arguments(kernel: Kernel) -> None:
    with pytest.raises(UnknownJobType, match=r"'test\.nope'"):
        kernel.jobs.enqueue("test.nope")
    with pytest.raises(InvalidJobArguments, match=r"test\.echo"):
        kernel.jobs.enqueue("test.echo", arguments={"when": object()})
    with pytest.raises(InvalidJobArguments):
        kernel.jobs.enqueue("test.echo", arguments=[1, 2])  # type: ignore[arg-type]
    with kernel.db.session() as db:
        assert db.scalar(select(func.count()).select_from(Job)) == 0


def test_registered_types_come_from_plugins(kernel: Kernel) -> None:
    assert "core.prune" in kernel.jobs.types
    assert kernel.jobs.owners["test.echo"] == "tests.jobs.jobplugin"
    assert kernel.jobs.backend.name == "in-process"


def test_cancel_a_queued_job(kernel: Kernel) -> None:
    # The runner is not started: the job waits in the queue.
    queued = kernel.jobs.enqueue("test.echo", org_id=None)
    cancelled = kernel.jobs.cancel(queued.id, by="tester")
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert logs(kernel, queued.id) == ["cancelled before it started by tester"]
    assert [e["job_id"] for e in events_of(kernel, "job.cancelled")] == [queued.id]
    # Starting the runner now must not run it.
    kernel.jobs.start()
    other = kernel.jobs.enqueue("test.echo")
    assert wait_state(kernel, other.id).state == "succeeded"
    assert job(kernel, queued.id).state == "cancelled"
    assert job(kernel, queued.id).attempts == 0
    with pytest.raises(Conflict, match="already ended cancelled"):
        kernel.jobs.cancel(queued.id)


def test_cancel_a_running_job(running: Kernel) -> None:
    queued = running.jobs.enqueue("test.hold")
    wait_log(running, queued.id, "holding")
    requested = running.jobs.cancel(queued.id)
    assert requested.cancel_requested
    done = wait_state(running, queued.id)
    assert done.state == "cancelled"
    assert "cancel requested" in logs(running, queued.id)
    with pytest.raises(Conflict):
        running.jobs.cancel(queued.id)


def test_cancel_fires_on_cancel_callbacks(running: Kernel) -> None:
    queued = running.jobs.enqueue("test.on_cancel")
    wait_log(running, queued.id, "waiting for a cancel")
    running.jobs.cancel(queued.id)
    done = wait_state(running, queued.id)
    assert done.state == "cancelled"
    assert "on_cancel fired" in logs(running, queued.id)


def test_cancel_seen_through_the_heartbeat(running: Kernel) -> None:
    """A cancel written by another process (here: straight to the row) reaches the job
    through its heartbeat thread."""
    queued = running.jobs.enqueue("test.on_cancel")
    wait_log(running, queued.id, "waiting for a cancel")
    with running.db.transaction() as db:
        row = db.get(Job, queued.id)
        assert row is not None
        row.cancel_requested = True
    assert wait_state(running, queued.id).state == "cancelled"
    assert "on_cancel fired" in logs(running, queued.id)


def test_cancel_unknown_job_is_not_found(kernel: Kernel) -> None:
    with pytest.raises(NotFound):
        kernel.jobs.cancel("0" * 32)
    queued = kernel.jobs.enqueue("test.echo", org_id=1)
    with pytest.raises(NotFound):
        kernel.jobs.cancel(queued.id, org_id=2)
    assert job(kernel, queued.id).state == "queued"


def test_a_job_over_its_time_limit_fails(running: Kernel) -> None:
    done = wait_state(running, running.jobs.enqueue("test.slow").id)
    assert done.state == "failed"
    assert done.error == "timed out after 1 seconds"


def test_duplicate_delivery_runs_once(kernel: Kernel) -> None:
    queued = kernel.jobs.enqueue("test.count")
    runner.set_kernel(kernel)
    outcomes: list[str] = []
    try:
        threads = [
            threading.Thread(target=lambda: outcomes.append(kernel.jobs.run(queued.id))),
            threading.Thread(target=lambda: outcomes.append(runner.execute(queued.id))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        outcomes.append(runner.execute(queued.id))
    finally:
        runner.set_kernel(None)
    assert sorted(outcomes) == ["skipped", "skipped", "succeeded"]
    assert jobplugin.RUNS[queued.id] == 1
    done = job(kernel, queued.id)
    assert done.attempts == 1 and done.result == 1


def test_restart_reaps_a_job_whose_worker_died(kernel: Kernel) -> None:
    """A panel restarted while a job ran: the row says running, its worker is gone."""
    long_ago = utcnow() - dt.timedelta(minutes=10)
    with kernel.db.transaction() as db:
        db.add(
            Job(
                id="a" * 32,
                type="test.hold",
                state="running",
                attempts=1,
                max_attempts=1,
                worker_id=f"{socket.gethostname()}:{dead_pid()}",
                started_at=long_ago,
                heartbeat_at=long_ago,
                created_at=long_ago,
            )
        )
        db.add(
            Job(
                id="b" * 32,
                type="test.echo",
                state="running",
                attempts=1,
                max_attempts=3,
                retry_safe=True,
                worker_id="elsewhere:1",
                started_at=long_ago,
                heartbeat_at=long_ago,
                created_at=long_ago,
            )
        )
        db.add(Job(id="c" * 32, type="test.echo", state="queued", created_at=long_ago))
    kernel.jobs.start()
    failed = wait_state(kernel, "a" * 32)
    assert failed.state == "failed"
    assert failed.error is not None
    assert failed.error.startswith(f"worker {socket.gethostname()}:")
    assert "died; no heartbeat since" in failed.error
    retried = wait_state(kernel, "b" * 32)
    assert retried.state == "succeeded" and retried.attempts == 2
    assert any(line.startswith("worker lost, retrying") for line in logs(kernel, "b" * 32))
    assert wait_state(kernel, "c" * 32).state == "succeeded"
    assert [e["job_id"] for e in published(kernel, "job.failed")] == ["a" * 32]


def test_same_pid_after_restart_is_not_taken_for_alive(kernel: Kernel) -> None:
    """In a container the restarted panel often has its old pid: the row's worker id
    is ours, but the job is not running here."""
    a_bit_ago = utcnow() - dt.timedelta(seconds=3)  # older than 2 heartbeats, not stale
    with kernel.db.transaction() as db:
        db.add(
            Job(
                id="d" * 32,
                type="test.fail",
                state="running",
                attempts=1,
                worker_id=kernel.process_id,
                started_at=a_bit_ago,
                heartbeat_at=a_bit_ago,
            )
        )
    assert kernel.jobs.reap() == 1
    done = job(kernel, "d" * 32)
    assert done.state == "failed" and f"worker {kernel.process_id} died" in (done.error or "")


def test_reaper_leaves_live_workers_alone_and_acts_once(kernel: Kernel) -> None:
    # Past two heartbeat intervals but within the timeout, on a live pid of this host.
    interval = kernel.settings.job_heartbeat_interval
    recent = utcnow() - dt.timedelta(seconds=2 * interval + 0.2)
    alive = f"{socket.gethostname()}:{os.getppid()}"
    with kernel.db.transaction() as db:
        db.add(
            Job(
                id="e" * 32,
                type="test.hold",
                state="running",
                attempts=1,
                worker_id=alive,
                started_at=recent,
                heartbeat_at=recent,
            )
        )
    assert kernel.jobs.reap() == 0
    assert job(kernel, "e" * 32).state == "running"
    stale = utcnow() - dt.timedelta(seconds=kernel.settings.job_heartbeat_timeout + 1)
    with kernel.db.transaction() as db:
        row = db.get(Job, "e" * 32)
        assert row is not None
        row.heartbeat_at = stale
    # Two reapers (the panel's and a worker's) racing: one acts.
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(kernel.jobs.reap())) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1]
    assert job(kernel, "e" * 32).state == "failed"
    assert len([line for line in logs(kernel, "e" * 32) if line.startswith("failed:")]) == 1


def test_reaper_cancels_a_lost_job_that_was_asked_to_cancel(kernel: Kernel) -> None:
    long_ago = utcnow() - dt.timedelta(minutes=10)
    with kernel.db.transaction() as db:
        db.add(
            Job(
                id="f" * 32,
                type="test.echo",
                state="running",
                attempts=1,
                retry_safe=True,
                max_attempts=3,
                cancel_requested=True,
                worker_id="elsewhere:1",
                started_at=long_ago,
                heartbeat_at=long_ago,
            )
        )
    assert kernel.jobs.reap() == 1
    assert job(kernel, "f" * 32).state == "cancelled"


def test_stop_leaves_a_running_job_to_the_next_start(kernel: Kernel, tmp_path: Any) -> None:
    release = tmp_path / "release"
    kernel.jobs.start()
    queued = kernel.jobs.enqueue("test.hold_first", arguments={"release": str(release)})
    wait_log(kernel, queued.id, "holding")
    kernel.jobs.stop()  # the job is still holding after the grace
    assert job(kernel, queued.id).state == "running"
    # The next panel on the same database (same host and, here, same pid).
    successor = Kernel.create(kernel.settings)
    try:
        successor.jobs.start()
        done = wait_state(successor, queued.id)
        assert done.state == "succeeded" and done.result == {"attempt": 2}
    finally:
        release.touch()  # let the first attempt's thread end
        successor.close()


def test_prune_deletes_old_finished_jobs_and_events(kernel: Kernel) -> None:
    old = utcnow() - dt.timedelta(days=40)
    recent = utcnow() - dt.timedelta(days=2)
    with kernel.db.transaction() as db:
        for n, (state, finished) in enumerate(
            [("succeeded", old), ("failed", old), ("succeeded", recent), ("running", None)]
        ):
            job_id = f"{n:032x}"
            db.add(
                Job(id=job_id, type="test.echo", state=state, created_at=old, finished_at=finished)
            )
            db.flush()
            db.add(JobLog(job_id=job_id, line="x", created_at=old))
        db.add(StoredEvent(type="job.succeeded", payload={}, created_at=old))
        db.add(StoredEvent(type="job.succeeded", payload={}, created_at=recent))
    queued = kernel.jobs.enqueue("core.prune", created_by="tester")
    assert kernel.jobs.run(queued.id) == "succeeded"
    done = job(kernel, queued.id)
    assert done.result == {"jobs_deleted": 2, "job_logs_deleted": 2, "events_deleted": 1}
    with kernel.db.session() as db:
        left = set(db.scalars(select(Job.id)))
        assert left == {f"{2:032x}", f"{3:032x}", queued.id}
        assert db.scalar(select(func.count()).select_from(StoredEvent)) >= 1
        assert (
            db.scalar(
                select(func.count()).select_from(StoredEvent).where(StoredEvent.created_at < recent)
            )
            == 0
        )
    again = kernel.jobs.enqueue("core.prune", arguments={"job_days": 1, "event_days": 1})
    assert kernel.jobs.run(again.id) == "succeeded"
    assert job(kernel, again.id).result["jobs_deleted"] == 1


def test_jobs_prune_cli(kernel: Kernel) -> None:
    from click.testing import CliRunner

    from gakwaya.cli import main

    env = {
        "GAKWAYA_DATABASE_URL": kernel.settings.database_url,
        "GAKWAYA_DATA_DIR": kernel.settings.data_dir,
        "GAKWAYA_SECRET_KEY": kernel.settings.secret_key,
    }
    result = CliRunner().invoke(main, ["jobs", "prune", "--job-days", "7"], env=env)
    assert result.exit_code == 0, result.output
    assert '"jobs_deleted":0' in result.output
    with kernel.db.session() as db:
        row = db.scalars(select(Job).where(Job.type == "core.prune")).one()
    assert row.state == "succeeded" and row.created_by == "cli"
    assert row.arguments == {"job_days": 7}


def test_worker_refuses_to_start_without_redis(kernel: Kernel) -> None:
    from click.testing import CliRunner

    from gakwaya.cli import main

    env = {
        "GAKWAYA_DATABASE_URL": kernel.settings.database_url,
        "GAKWAYA_DATA_DIR": kernel.settings.data_dir,
        "GAKWAYA_REDIS_URL": "",
    }
    result = CliRunner().invoke(main, ["worker"], env=env)
    assert result.exit_code == 2
    assert "GAKWAYA_REDIS_URL" in result.output


def test_wait_for_is_bounded() -> None:
    with pytest.raises(AssertionError, match="timed out waiting"):
        wait_for(lambda: False, timeout=0.1)


def test_a_beat_after_the_outcome_is_recorded_does_not_take_the_job_for_lost(
    kernel: Kernel,
) -> None:
    """A heartbeat that finds the row finished by its own attempt stops quietly; one
    that finds it taken by someone else stops the job ("lost")."""
    from gakwaya.jobs.context import RunningJob

    def started() -> tuple[RunningJob, runner.Heartbeat]:
        queued = kernel.jobs.enqueue("test.echo", org_id=None, arguments={"name": "x", "n": 1})
        claimed = runner.claim(kernel, queued.id)
        assert claimed is not None
        ctx = RunningJob(
            kernel,
            job_id=queued.id,
            org_id=None,
            attempt=claimed.attempt,
            arguments=claimed.arguments,
            scrub=kernel.jobs.scrub,
        )
        return ctx, runner.Heartbeat(kernel, ctx, timeout=60)

    ctx, heartbeat = started()
    assert heartbeat.beat() is True
    heartbeat.stop()  # never started: returns at once
    assert runner._finish(kernel, ctx, "test.echo", "succeeded") == "succeeded"
    assert heartbeat.beat() is False
    assert ctx.stop_reason is None

    other, watching = started()
    with kernel.db.transaction() as db:
        db.execute(Job.__table__.update().where(Job.id == other.job_id).values(worker_id="else"))
    assert watching.beat() is False
    assert other.stop_reason == "lost"
