"""The reaper: nothing stays ``queued`` or ``running`` forever.

It runs in the panel and in every ``gakwaya worker`` (a thread, once at start and
then every ``reaper_interval`` seconds). Each pass:

1. **Abandoned running jobs.** A running job is abandoned when its heartbeat is
   older than ``job_heartbeat_timeout``, or, sooner, when its worker runs on this
   host and is gone: its pid no longer exists, or it is this very process (a
   restarted panel often gets its old pid back in a container) and the job is not
   running here. The fast path also waits two heartbeat intervals, so a live
   worker in another PID namespace with the same host name keeps its job.
   An abandoned job whose type is retry-safe and that has attempts left goes back
   to ``queued`` and is submitted again ("worker lost, retrying"); one whose cancel
   was requested ends ``cancelled``; any other ends ``failed`` with "worker <id>
   died; no heartbeat since <time>".
2. **Lost queued jobs.** In-process: queued jobs this process does not hold (left by
   a previous run, or enqueued by the CLI) are submitted. With rq: queued jobs
   older than a grace period whose rq job is missing or ended in Redis are
   enqueued again.

Every change is a guarded ``UPDATE`` on the state, worker, attempt and heartbeat
the reaper saw, so two reapers (panel and workers) never handle one job twice;
a duplicate submission is harmless because the runner's claim is guarded too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog

if TYPE_CHECKING:
    from gakwaya.jobs.queue import JobQueue
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.jobs.reaper")

#: Queued jobs examined per pass and per query.
BATCH = 500


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _split_worker(worker_id: str) -> tuple[str, int | None]:
    host, _, pid = worker_id.rpartition(":")
    return (host, int(pid)) if pid.isdigit() else (worker_id, None)


class Reaper:
    def __init__(self, kernel: Kernel, queue: JobQueue) -> None:
        self.kernel = kernel
        self.queue = queue
        self.hostname = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Thread -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="job-reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    def _loop(self) -> None:
        interval = self.kernel.settings.reaper_interval
        while True:
            try:
                self.run_once()
            except Exception:
                log.exception("reaper pass failed")
            if self._stop.wait(interval):
                return

    # One pass -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Handle abandoned running jobs, then lost queued ones; return how many."""
        return self.reap_running() + self.resubmit_queued()

    def reap_running(self) -> int:
        settings = self.kernel.settings
        now = utcnow()
        cutoff = now - dt.timedelta(seconds=settings.job_heartbeat_timeout)
        fast_cutoff = now - dt.timedelta(seconds=2 * settings.job_heartbeat_interval)
        with self.kernel.db.session() as db:
            rows = db.execute(
                select(
                    Job.id,
                    Job.worker_id,
                    Job.attempts,
                    Job.heartbeat_at,
                    Job.started_at,
                )
                .where(Job.state == "running")
                .where(Job.heartbeat_at.is_(None) | (Job.heartbeat_at < fast_cutoff))
            ).all()
        handled = 0
        here = self.queue.running_here()
        for row in rows:
            heartbeat = row.heartbeat_at or row.started_at
            worker_id = row.worker_id or ""
            if (
                heartbeat is not None
                and heartbeat >= cutoff
                and not self._gone(worker_id, row.id, here)
            ):
                continue
            if self._abandon(row.id, worker_id, row.attempts, heartbeat, fast_cutoff):
                handled += 1
        return handled

    def _gone(self, worker_id: str, job_id: str, here: Mapping[str, object]) -> bool:
        """The job's worker is known dead without waiting for the heartbeat timeout."""
        if worker_id == self.kernel.process_id:
            return job_id not in here
        host, pid = _split_worker(worker_id)
        return host == self.hostname and pid is not None and not pid_alive(pid)

    def _abandon(
        self,
        job_id: str,
        worker_id: str,
        attempts: int,
        heartbeat: dt.datetime | None,
        fast_cutoff: dt.datetime,
    ) -> bool:
        now = utcnow()
        since = heartbeat.strftime("%Y-%m-%d %H:%M:%S UTC") if heartbeat else "it started"
        with self.kernel.db.transaction() as db:
            job = db.get(Job, job_id)
            if job is None:
                return False
            guard = (
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state == "running",
                    Job.attempts == attempts,
                    Job.worker_id == worker_id if worker_id else Job.worker_id.is_(None),
                )
                .where(Job.heartbeat_at.is_(None) | (Job.heartbeat_at < fast_cutoff))
            )
            if job.cancel_requested:
                state, error = "cancelled", None
                line = f"worker {worker_id} lost; cancelled as requested"
                values: dict[str, object] = {"state": state, "finished_at": now}
            elif job.retry_safe and attempts < job.max_attempts:
                state, error = "queued", None
                line = (
                    f"worker lost, retrying (worker {worker_id}, no heartbeat since {since}; "
                    f"attempt {attempts + 1} of {job.max_attempts})"
                )
                values = {
                    "state": "queued",
                    "worker_id": None,
                    "heartbeat_at": None,
                    "progress": 0,
                }
            else:
                state = "failed"
                error = f"worker {worker_id or '(unknown)'} died; no heartbeat since {since}"
                if job.retry_safe:
                    error += f" (no attempts left: {attempts} of {job.max_attempts})"
                line = f"failed: {error}"
                values = {"state": state, "finished_at": now, "error": error}
            done = db.execute(
                guard.values(**values), execution_options={"synchronize_session": False}
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False  # another reaper got there first, or the worker woke up
            db.add(JobLog(job_id=job_id, line=line, created_at=now))
            job_type, org_id = job.type, job.org_id
            db.expunge(job)
        log.warning("job %s (%s): worker %s lost; now %s", job_id, job_type, worker_id, state)
        if state == "queued":
            job.state = "queued"
            self.queue.submit(job, replace=True)
        else:
            from gakwaya.jobs.runner import publish_outcome

            publish_outcome(self.kernel, job_id, job_type, org_id, state, error)
        return True

    def resubmit_queued(self) -> int:
        from gakwaya.jobs.queue import RqBackend

        backend = self.queue.backend
        grace = dt.timedelta(seconds=self.kernel.settings.job_heartbeat_timeout)
        cutoff = utcnow() - grace
        handled = 0
        last_created: dt.datetime | None = None
        last_id = ""
        while True:
            with self.kernel.db.session() as db:
                query = select(Job).where(Job.state == "queued")
                if isinstance(backend, RqBackend):
                    query = query.where(Job.created_at < cutoff)
                if last_created is not None:
                    query = query.where(
                        (Job.created_at > last_created)
                        | ((Job.created_at == last_created) & (Job.id > last_id))
                    )
                jobs = list(db.scalars(query.order_by(Job.created_at, Job.id).limit(BATCH)))
                for job in jobs:
                    db.expunge(job)
            if not jobs:
                return handled
            last_created, last_id = jobs[-1].created_at, jobs[-1].id
            if isinstance(backend, RqBackend):
                try:
                    lost = set(backend.lost([j.id for j in jobs]))
                except Exception:
                    log.warning("reaper: cannot ask Redis about queued jobs", exc_info=True)
                    return handled
                for job in jobs:
                    if job.id in lost:
                        log.warning(
                            "job %s: lost from rq queue %r; enqueued again", job.id, job.queue
                        )
                        self.queue.submit(job, replace=True)
                        handled += 1
            else:
                for job in jobs:
                    if not backend.knows(job.id) and job.id not in self.queue.running_here():
                        self.queue.submit(job)
                        handled += 1
            if len(jobs) < BATCH:
                return handled
