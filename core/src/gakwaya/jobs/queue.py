"""Enqueueing, cancelling and running jobs: ``kernel.jobs``.

The job record in the database is the truth; a backend only carries job ids:

- **rq** (``redis_url`` set): ids go to rq queues and ``gakwaya worker`` processes
  run them (``gakwaya.jobs.runner.execute``);
- **in-process** (no Redis): a few daemon threads of the panel run them.

Either way the runner claims a job with a guarded update, so a duplicate delivery
runs it once, and the :class:`~gakwaya.jobs.reaper.Reaper` turns jobs whose worker
died into failed or retried ones and re-submits queued jobs a backend lost.

Stopping (:meth:`JobQueue.stop`) does not cancel running in-process jobs: they get
a short grace to finish; one still running after it is left to the reaper of the
next start, which fails it or, when its type is retry-safe, runs it again.
Cancelling would record "cancelled", which nobody asked for, and waiting without
limit would let one stuck job hold a restart hostage.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog
from gakwaya.jobs.context import RunningJob, Scrubber
from gakwaya_sdk.jobs import JobType

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gakwaya.jobs.reaper import Reaper
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.jobs")

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
JOB_ID_RULE = "a job id: 32 lowercase hexadecimal characters"
JOB_ID = re.compile(JOB_ID_PATTERN)
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")
#: How long :meth:`JobQueue.stop` lets running in-process jobs finish.
STOP_GRACE_SECONDS = 5.0
#: rq kills a job this long after its type's timeout; the runner asks it to stop at
#: the timeout itself, so a cooperative job ends cleanly first.
HARD_TIMEOUT_GRACE = 60
#: The rq function every job id is enqueued with.
RQ_FUNCTION = "gakwaya.jobs.runner.execute"


class UnknownJobType(ValueError):
    """``enqueue`` was given a type no loaded plugin registered."""


class InvalidJobArguments(ValueError):
    """``enqueue`` was given arguments that are not a JSON object."""


class _AnyOrg:
    """Sentinel: look a job up whatever its organization (None is a real value)."""


#: ``org_id`` value for :meth:`JobQueue.cancel` and :meth:`JobQueue.get` that matches
#: every organization (kernel code); the API passes the caller's organization.
ANY_ORG: Any = _AnyOrg()


# Backends ------------------------------------------------------------------------------


class InProcessBackend:
    """A few daemon threads fed from a local queue.

    Daemon threads, not a ``ThreadPoolExecutor``: the interpreter joins an executor's
    threads at exit, so one stuck job would keep a stopping panel alive forever.
    """

    name = "in-process"

    def __init__(self, kernel: Kernel, threads: int) -> None:
        self.kernel = kernel
        self.size = threads
        self._queue: stdlib_queue.SimpleQueue[str | None] = stdlib_queue.SimpleQueue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.accepting = False

    def start(self) -> None:
        with self._lock:
            if self.accepting:
                return
            self.accepting = True
            self._threads = [
                threading.Thread(target=self._loop, name=f"job-runner-{n}", daemon=True)
                for n in range(self.size)
            ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, job_id: str, *, type_name: str, queue: str, timeout: int, replace: bool = False
    ) -> None:
        # Before start() the id waits in the queue; after stop() it is dropped and the
        # record stays queued for the next start's reaper.
        with self._lock:
            if job_id in self._pending or (self._threads and not self.accepting):
                return
            self._pending.add(job_id)
        self._queue.put(job_id)

    def knows(self, job_id: str) -> bool:
        """True when the id waits in this process's queue (not lost)."""
        with self._lock:
            return job_id in self._pending

    def remove(self, job_id: str) -> None:
        # The runner's claim fails for a cancelled job; nothing to pull out here.
        return None

    def _loop(self) -> None:
        from gakwaya.jobs.runner import run_job

        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                self._pending.discard(job_id)
            try:
                run_job(self.kernel, job_id)
            except Exception:
                log.exception("job %s: the in-process runner failed", job_id)

    def stop(self, grace: float) -> list[threading.Thread]:
        """Stop taking jobs; wait up to ``grace`` seconds; return threads still busy."""
        with self._lock:
            if not self.accepting:
                return []
            self.accepting = False
            threads = list(self._threads)
            # Drop what has not started: those records stay queued for the next start.
            while True:
                try:
                    self._queue.get_nowait()
                except stdlib_queue.Empty:
                    break
            self._pending.clear()
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + grace
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]


class RqBackend:
    """Job ids on rq queues, run by ``gakwaya worker``."""

    name = "rq"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    @property
    def connection(self) -> Any:
        redis = self.kernel.redis
        assert redis is not None
        return redis

    def start(self) -> None:
        return None

    def submit(
        self, job_id: str, *, type_name: str, queue: str, timeout: int, replace: bool = False
    ) -> None:
        from rq import Queue

        if replace:  # a retry: drop the dead attempt's rq job and its registry entries
            self.remove(job_id)
        Queue(queue, connection=self.connection).enqueue(
            RQ_FUNCTION,
            job_id,
            job_id=job_id,
            job_timeout=int(timeout) + HARD_TIMEOUT_GRACE,
            description=f"{type_name} {job_id}",
            # The database keeps results and failures; rq need not.
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )

    def remove(self, job_id: str) -> None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RqJob

        try:
            RqJob.fetch(job_id, connection=self.connection).delete()
        except NoSuchJobError:
            return

    def lost(self, job_ids: list[str]) -> list[str]:
        """The ids among ``job_ids`` that rq will never run: missing from Redis, or
        ended there (failed, stopped, cancelled, finished) without running to a
        recorded outcome."""
        from rq.job import Job as RqJob

        if not job_ids:
            return []
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(RqJob.key_for(job_id), "status")
        statuses = pipe.execute()
        alive = {
            b"queued",
            b"started",
            b"scheduled",
            b"deferred",
            b"created",
            b"rate_limited",
            b"ready_to_enqueue",
        }
        return [jid for jid, status in zip(job_ids, statuses, strict=True) if status not in alive]

    def stop(self, grace: float) -> list[threading.Thread]:
        return []


# The queue -------------------------------------------------------------------------------


class JobQueue:
    """The kernel's job service: registry of types, enqueue, cancel, start/stop."""

    def __init__(self, kernel: Kernel) -> None:
        from gakwaya.jobs.reaper import Reaper

        self.kernel = kernel
        self.types: dict[str, JobType] = {}
        self.owners: dict[str, str] = {}
        for plugin, job_type in kernel.plugins.job_types():
            if job_type.name in self.types:
                log.warning(
                    "job type %r from %s ignored: already registered by %s",
                    job_type.name,
                    plugin,
                    self.owners[job_type.name],
                )
                continue
            self.types[job_type.name] = job_type
            self.owners[job_type.name] = plugin
        self.scrub = Scrubber.for_kernel(kernel)
        self.backend: InProcessBackend | RqBackend = (
            RqBackend(kernel)
            if kernel.settings.redis_url
            else InProcessBackend(kernel, kernel.settings.job_threads)
        )
        self.reaper: Reaper = Reaper(kernel, self)
        self._running: dict[str, RunningJob] = {}
        self._lock = threading.Lock()
        self._started = False

    # Enqueueing ---------------------------------------------------------------------------

    def enqueue(
        self,
        type_name: str,
        *,
        org_id: int | None = None,
        arguments: dict[str, Any] | None = None,
        created_by: str = "",
        queue: str = "default",
    ) -> Job:
        """Store a queued job and hand its id to the backend; return the record.

        ``arguments`` must be a JSON object; it is stored in clear and shown to the
        organization's members, so pass ids, never secrets. The record is committed
        before the backend sees the id, so a worker always finds it.
        """
        job_type = self.types.get(type_name)
        if job_type is None:
            known = ", ".join(sorted(self.types)) or "none"
            raise UnknownJobType(f"unknown job type {type_name!r} (registered: {known})")
        if not QUEUE_NAME.match(queue):
            raise ValueError(
                f"queue name {queue!r}: 1 to 50 lowercase letters, digits, '-' and '_', "
                "starting with a letter"
            )
        arguments = _json_object(type_name, arguments if arguments is not None else {})
        job = Job(
            id=uuid.uuid4().hex,
            org_id=org_id,
            type=type_name,
            arguments=arguments,
            state="queued",
            attempts=0,
            max_attempts=max(1, job_type.max_attempts),
            retry_safe=job_type.retry_safe,
            queue=queue,
            created_by=created_by[:300],
            created_at=utcnow(),
        )
        with self.kernel.db.transaction() as db:
            db.add(job)
        self.submit(job)
        return job

    def submit(self, job: Job, *, replace: bool = False) -> None:
        """Hand a queued record's id to the backend. A failure is logged, not raised:
        the record stays queued and the reaper submits it again."""
        job_type = self.types.get(job.type)
        try:
            self.backend.submit(
                job.id,
                type_name=job.type,
                queue=job.queue,
                timeout=job_type.timeout if job_type is not None else 3600,
                replace=replace,
            )
        except Exception:
            log.exception("job %s: handing it to the %s backend failed", job.id, self.backend.name)

    # Reading ------------------------------------------------------------------------------

    def get(self, job_id: str, *, org_id: Any = ANY_ORG) -> Job | None:
        with self.kernel.db.session() as db:
            return _lookup(db, job_id, org_id)

    # Cancelling -----------------------------------------------------------------------------

    def cancel(self, job_id: str, *, org_id: Any = ANY_ORG, by: str = "") -> Job:
        """Cancel a job: a queued one ends ``cancelled`` at once; a running one gets
        ``cancel_requested`` and stops at its next check (its ``on_cancel`` callbacks
        fire). Raises ``NotFound`` (unknown id, or another organization's job) or
        ``Conflict`` (already finished)."""
        from gakwaya.errors import Conflict, NotFound

        who = f" by {by}" if by else ""
        for _ in range(5):
            with self.kernel.db.transaction() as db:
                job = _lookup(db, job_id, org_id)
                if job is None:
                    raise NotFound(f"job {job_id!r} not found")
                if job.state in FINISHED_STATES:
                    raise Conflict(
                        f"job {job_id} already ended {job.state}; only queued or running "
                        "jobs can be cancelled"
                    )
                now = utcnow()
                values: dict[str, Any] = {"cancel_requested": True}
                if job.state == "queued":
                    values.update(state="cancelled", finished_at=now)
                done = db.execute(
                    update(Job).where(Job.id == job_id, Job.state == job.state).values(**values),
                    execution_options={"synchronize_session": False},
                )
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # it moved on (claimed, finished) meanwhile: look again
                line = (
                    "cancelled before it started" if job.state == "queued" else "cancel requested"
                )
                db.add(JobLog(job_id=job_id, line=f"{line}{who}", created_at=now))
                was = job.state
            if was == "queued":
                try:
                    self.backend.remove(job_id)
                except Exception:
                    log.warning("job %s: removing it from rq failed", job_id, exc_info=True)
                from gakwaya.jobs.runner import publish_outcome

                publish_outcome(self.kernel, job_id, job.type, job.org_id, "cancelled", None)
            else:
                with self._lock:
                    ctx = self._running.get(job_id)
                if ctx is not None:  # running here: no need to wait for the heartbeat
                    ctx.request_stop("cancel")
            fresh = self.get(job_id)
            assert fresh is not None
            return fresh
        raise Conflict(f"job {job_id} kept changing state; try again")

    # Running -----------------------------------------------------------------------------

    def run(self, job_id: str) -> str:
        """Claim and run a queued job in the calling thread (the CLI, tests)."""
        from gakwaya.jobs.runner import run_job

        return run_job(self.kernel, job_id)

    def register_running(self, ctx: RunningJob) -> None:
        with self._lock:
            self._running[ctx.job_id] = ctx

    def unregister_running(self, ctx: RunningJob) -> None:
        with self._lock:
            if self._running.get(ctx.job_id) is ctx:
                del self._running[ctx.job_id]

    def running_here(self) -> dict[str, RunningJob]:
        with self._lock:
            return dict(self._running)

    def reap(self) -> int:
        """One reaper pass now; returns how many jobs it acted on."""
        return self.reaper.run_once()

    # Life cycle -----------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Start the backend's runner (in-process) and the reaper thread."""
        if self._started:
            return
        self._started = True
        self.backend.start()
        self.reaper.start()

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.reaper.stop()
        busy = self.backend.stop(STOP_GRACE_SECONDS)
        if busy:
            left = self.running_here()
            log.warning(
                "stopping with %d job(s) still running (%s); the next start's reaper "
                "fails or retries them",
                len(left),
                ", ".join(sorted(left)),
            )
            for ctx in left.values():
                if ctx.heartbeat is not None:
                    ctx.heartbeat.stop()


def _lookup(db: Session, job_id: str, org_id: Any) -> Job | None:
    query = select(Job).where(Job.id == job_id)
    if not isinstance(org_id, _AnyOrg):
        query = query.where(Job.org_id == org_id)
    return db.scalars(query).first()


def _json_object(type_name: str, arguments: object) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        raise InvalidJobArguments(
            f"arguments of {type_name!r} must be a JSON object (a dict), "
            f"not {type(arguments).__name__}"
        )
    for key in arguments:
        if not isinstance(key, str):
            raise InvalidJobArguments(f"arguments of {type_name!r}: key {key!r} is not a string")
    try:
        decoded = msgspec.json.decode(msgspec.json.encode(arguments))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidJobArguments(f"arguments of {type_name!r} are not JSON: {exc}") from None
    assert isinstance(decoded, dict)
    return decoded
