"""rq on a real Redis with real `gakwaya worker` processes, killed with SIGKILL mid-job."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rq.job import Job as RqJob

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job
from gakwaya.kernel import Kernel
from tests.jobs.helpers import job, logs, wait_for, wait_log, wait_state

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.redis


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    return {"plugin_modules": ["tests.jobs.jobplugin"], "redis_url": redis_url}


@pytest.fixture
def rq_kernel(kernel: Kernel) -> Kernel:
    """The test process plays the panel: it enqueues, cancels and (when a test calls
    ``reap``) reaps. Redis is shared by the session: start each test empty."""
    assert kernel.redis is not None
    kernel.redis.flushdb()
    assert kernel.jobs.backend.name == "rq"
    return kernel


Worker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(rq_kernel: Kernel, tmp_path: Path) -> Iterator[Worker]:
    settings = rq_kernel.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env.update(
        GAKWAYA_DATABASE_URL=settings.database_url,
        GAKWAYA_REDIS_URL=settings.redis_url,
        GAKWAYA_DATA_DIR=settings.data_dir,
        GAKWAYA_SECRET_KEY=settings.secret_key,
        GAKWAYA_PLUGIN_MODULES="tests.jobs.jobplugin",
        GAKWAYA_JOB_HEARTBEAT_INTERVAL=str(settings.job_heartbeat_interval),
        GAKWAYA_JOB_HEARTBEAT_TIMEOUT=str(settings.job_heartbeat_timeout),
        GAKWAYA_REAPER_INTERVAL=str(settings.reaper_interval),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gakwaya"), "worker", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    for path in sorted(tmp_path.glob("worker-*.log")):
        print(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)  # reaped: its pid is gone, not a zombie


def test_worker_runs_jobs_and_skips_cancelled_ones(rq_kernel: Kernel, start_worker: Worker) -> None:
    ok = rq_kernel.jobs.enqueue("test.echo", arguments={"a": 1})
    bad = rq_kernel.jobs.enqueue("test.fail", arguments={"message": "nope"})
    dropped = rq_kernel.jobs.enqueue("test.echo")
    assert RqJob.exists(dropped.id, connection=rq_kernel.redis)
    assert rq_kernel.jobs.cancel(dropped.id).state == "cancelled"
    assert not RqJob.exists(dropped.id, connection=rq_kernel.redis)

    worker = start_worker("--burst")
    assert worker.wait(120) == 0

    done = job(rq_kernel, ok.id)
    assert done.state == "succeeded", done.error
    assert done.result == {"echo": {"a": 1}, "attempt": 1}
    assert done.worker_id is not None and done.worker_id.endswith(f":{worker.pid}")
    assert logs(rq_kernel, ok.id) == ["hello", "half way"]
    failed = job(rq_kernel, bad.id)
    assert failed.state == "failed" and failed.error == "RuntimeError: nope"
    assert job(rq_kernel, dropped.id).attempts == 0
    # The worker published the outcomes to the shared event table.
    from sqlalchemy import select

    from gakwaya.db.models import StoredEvent

    with rq_kernel.db.session() as db:
        kinds = {(e.type, e.payload["job_id"]) for e in db.scalars(select(StoredEvent))}
    assert {("job.succeeded", ok.id), ("job.failed", bad.id)} <= kinds


def test_cancel_a_running_job_on_a_worker(rq_kernel: Kernel, start_worker: Worker) -> None:
    start_worker()
    queued = rq_kernel.jobs.enqueue("test.on_cancel")
    wait_log(rq_kernel, queued.id, "waiting for a cancel")
    assert rq_kernel.jobs.cancel(queued.id).cancel_requested
    done = wait_state(rq_kernel, queued.id)
    assert done.state == "cancelled"
    assert "on_cancel fired" in logs(rq_kernel, queued.id)


def test_worker_killed_mid_job_fails_the_job(
    rq_kernel: Kernel, start_worker: Worker, tmp_path: Path
) -> None:
    worker = start_worker()
    queued = rq_kernel.jobs.enqueue("test.hold", arguments={"release": str(tmp_path / "never")})
    wait_log(rq_kernel, queued.id, "holding")
    assert job(rq_kernel, queued.id).state == "running"
    kill(worker)

    def reaped() -> Job | None:
        rq_kernel.jobs.reap()  # the panel's reaper, one pass at a time
        current = job(rq_kernel, queued.id)
        return current if current.state != "running" else None

    done = wait_for(reaped, what="the reaper to fail the job")
    assert done.state == "failed"
    assert done.error is not None
    assert done.error.startswith(f"worker {done.worker_id} died; no heartbeat since")
    assert done.worker_id is not None and done.worker_id.endswith(f":{worker.pid}")
    assert done.attempts == 1


def test_retry_safe_job_is_rerun_by_another_worker(
    rq_kernel: Kernel, start_worker: Worker, tmp_path: Path
) -> None:
    first = start_worker()
    queued = rq_kernel.jobs.enqueue(
        "test.hold_first", arguments={"release": str(tmp_path / "never")}
    )
    wait_log(rq_kernel, queued.id, "holding (attempt 1)")
    kill(first)
    second = start_worker()  # its own reaper finds the job and re-enqueues it
    done = wait_state(rq_kernel, queued.id, "succeeded", "failed")
    assert done.state == "succeeded", done.error
    assert done.result == {"attempt": 2} and done.attempts == 2
    assert done.worker_id is not None and done.worker_id.endswith(f":{second.pid}")
    lines = logs(rq_kernel, queued.id)
    assert any(line.startswith("worker lost, retrying") for line in lines)
    assert lines[-1] == "completing on attempt 2"


def test_reaper_reenqueues_a_job_lost_from_redis(rq_kernel: Kernel) -> None:
    queued = rq_kernel.jobs.enqueue("test.echo")
    assert rq_kernel.redis is not None
    rq_kernel.redis.flushdb()  # Redis restarted without persistence
    long_ago = utcnow() - dt.timedelta(seconds=rq_kernel.settings.job_heartbeat_timeout + 1)
    with rq_kernel.db.transaction() as db:
        row = db.get(Job, queued.id)
        assert row is not None
        row.created_at = long_ago
    assert rq_kernel.jobs.reap() == 1
    assert RqJob.exists(queued.id, connection=rq_kernel.redis)
    assert rq_kernel.jobs.reap() == 0  # present now: left alone
    assert job(rq_kernel, queued.id).state == "queued"
