"""Running one job: claim it, keep its heartbeat, call its function, record the outcome.

The same code runs in a ``gakwaya worker`` process (rq calls :func:`execute`) and
in the panel's own threads (the in-process backend calls :func:`run_job`).

- The claim is one guarded ``UPDATE … WHERE state = 'queued'``: a job delivered
  twice (an rq re-enqueue, two reapers, a restart) runs once.
- While the function runs, a heartbeat thread stamps ``heartbeat_at`` every
  ``job_heartbeat_interval`` seconds and watches ``cancel_requested``, the time
  limit and ownership, and tells the job to stop (``on_cancel`` callbacks fire
  from that thread).
- The outcome is written with a guarded ``UPDATE`` too (still running, same
  worker, same attempt), so a job the reaper already took over cannot overwrite
  the next attempt's record. Events are published after that commit.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import Job, JobLog
from gakwaya.jobs.context import MAX_ERROR, RunningJob, Scrubber, clip
from gakwaya_sdk.jobs import JobCancelled

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.jobs")

#: Largest JSON result stored for a job.
MAX_RESULT_BYTES = 256 * 1024

_kernel: Kernel | None = None


def set_kernel(kernel: Kernel | None) -> None:
    """Give :func:`execute` the kernel of this process (``gakwaya worker`` does it
    before it starts rq's work loop)."""
    global _kernel
    _kernel = kernel


def current_kernel(ctx: object | None = None) -> Kernel:
    """The kernel a kernel-side job function runs with (from its context, or this
    process's worker kernel)."""
    if isinstance(ctx, RunningJob):
        return ctx.kernel
    if _kernel is None:
        raise RuntimeError("no kernel in this process: run jobs with `gakwaya worker` or the panel")
    return _kernel


def execute(job_id: str) -> str:
    """rq's entry point, enqueued as ``"gakwaya.jobs.runner.execute"``. Returns the
    state the job ended in, or ``"skipped"`` when it was not ours to run."""
    if _kernel is None:
        raise RuntimeError(
            "gakwaya.jobs.runner.execute needs the process's kernel: run jobs with "
            "`gakwaya worker`, which sets it"
        )
    return run_job(_kernel, job_id)


class _Claim(msgspec.Struct, kw_only=True):
    type: str
    org_id: int | None
    attempt: int
    arguments: dict[str, Any]
    cancel_requested: bool


def claim(kernel: Kernel, job_id: str) -> _Claim | None:
    """Take a queued job for this process, or None when it is not queued any more."""
    now = utcnow()
    with kernel.db.transaction() as db:
        result = db.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(
                state="running",
                attempts=Job.attempts + 1,
                worker_id=kernel.process_id,
                started_at=now,
                heartbeat_at=now,
                finished_at=None,
                progress=0,
            ),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = db.execute(
            select(Job.type, Job.org_id, Job.attempts, Job.arguments, Job.cancel_requested).where(
                Job.id == job_id
            )
        ).one()
    return _Claim(
        type=row.type,
        org_id=row.org_id,
        attempt=row.attempts,
        arguments=dict(row.arguments or {}),
        cancel_requested=bool(row.cancel_requested),
    )


#: Longest :meth:`Heartbeat.stop` waits for a beat in flight (one transaction).
STOP_WAIT = 10.0


class Heartbeat(threading.Thread):
    """Stamps the job's heartbeat and turns cancel requests, the time limit and lost
    ownership into :meth:`RunningJob.request_stop`."""

    def __init__(self, kernel: Kernel, ctx: RunningJob, timeout: float) -> None:
        super().__init__(name=f"job-heartbeat-{ctx.job_id[:8]}", daemon=True)
        self.kernel = kernel
        self.ctx = ctx
        self.interval = kernel.settings.job_heartbeat_interval
        self.deadline = time.monotonic() + timeout
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.beat():
                    return
            except Exception:
                # The database may be away for a moment; the reaper elsewhere judges
                # by the heartbeat, and a lost job learns it on the next beat.
                log.warning("job %s: heartbeat failed", self.ctx.job_id, exc_info=True)

    def beat(self) -> bool:
        ctx = self.ctx
        with self.kernel.db.transaction() as db:
            result = db.execute(
                ctx.owned_update().values(heartbeat_at=utcnow()),
                execution_options={"synchronize_session": False},
            )
            owned = result.rowcount == 1  # type: ignore[attr-defined]
            cancel = owned and bool(
                db.scalar(select(Job.cancel_requested).where(Job.id == ctx.job_id))
            )
        if not owned:
            if self._done.is_set():
                # The job ended and recorded its outcome while this beat ran: the row
                # is no longer "running" because this attempt finished it.
                return False
            log.warning("job %s: no longer owned by %s; stopping it", ctx.job_id, ctx.worker_id)
            ctx.request_stop("lost")
            return False
        if cancel:
            ctx.request_stop("cancel")
        elif time.monotonic() > self.deadline:
            ctx.request_stop("timeout")
        return True

    def stop(self) -> None:
        """End the beats; wait for one in flight, so none runs after the outcome is
        recorded (it would find the row finished and take the job for lost)."""
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=STOP_WAIT)


def run_job(kernel: Kernel, job_id: str) -> str:
    """Claim and run one job in this thread; return its final state or ``"skipped"``."""
    queue = kernel.jobs
    claimed = claim(kernel, job_id)
    if claimed is None:
        log.info("job %s: not queued any more; skipped", job_id)
        return "skipped"
    ctx = RunningJob(
        kernel,
        job_id=job_id,
        org_id=claimed.org_id,
        attempt=claimed.attempt,
        arguments=claimed.arguments,
        scrub=queue.scrub,
    )
    job_type = queue.types.get(claimed.type)
    if job_type is None:
        missing = (
            f"job type {claimed.type!r} is not available in worker {kernel.process_id} "
            "(is the plugin that registers it installed and enabled there?)"
        )
        return _finish(kernel, ctx, claimed.type, "failed", error=missing)

    queue.register_running(ctx)
    heartbeat = ctx.heartbeat = Heartbeat(kernel, ctx, job_type.timeout)
    state: str = "failed"
    result: Any = None
    error: str | None = None
    try:
        if claimed.cancel_requested:
            ctx.request_stop("cancel")
        heartbeat.start()
        try:
            ctx.check_cancelled()
            value = job_type.func(ctx, **claimed.arguments)
            result, error = _jsonable(value)
            state = "succeeded" if error is None else "failed"
        except JobCancelled:
            if ctx.stop_reason == "timeout":
                state, error = "failed", f"timed out after {job_type.timeout} seconds"
            else:
                state = "cancelled"
        except Exception as exc:
            # The job's log is read by the organization's members: _finish ends it with
            # one line that says what failed. The traceback is for the operator, in the
            # server's log (scrubbed as the job's log is), under the job's id.
            log.error(
                "job %s (%s) raised:\n%s",
                job_id,
                claimed.type,
                queue.scrub("".join(traceback.format_exception(exc)).rstrip()),
            )
            if ctx.stop_reason == "cancel":
                state = "cancelled"
            elif ctx.stop_reason == "timeout" or _is_hard_timeout(exc):
                state, error = "failed", f"timed out after {job_type.timeout} seconds"
            else:
                state, error = "failed", describe(exc, queue.scrub)
    finally:
        heartbeat.stop()
        queue.unregister_running(ctx)
    return _finish(kernel, ctx, claimed.type, state, result=result, error=error)


def describe(exc: BaseException, scrub: Scrubber) -> str:
    """``Type: message`` of an exception, scrubbed and clipped, for ``jobs.error``."""
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return clip(scrub(text), MAX_ERROR)


def _is_hard_timeout(exc: BaseException) -> bool:
    from rq.timeouts import JobTimeoutException

    return isinstance(exc, JobTimeoutException)


def _jsonable(value: object) -> tuple[Any, str | None]:
    try:
        encoded = msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        return None, f"the job returned a value that is not JSON ({type(value).__name__}: {exc})"
    if len(encoded) > MAX_RESULT_BYTES:
        return None, (
            f"the job's result is {len(encoded)} bytes of JSON; at most {MAX_RESULT_BYTES} "
            "are stored (store large output elsewhere and return a reference)"
        )
    return msgspec.json.decode(encoded), None


def _finish(
    kernel: Kernel,
    ctx: RunningJob,
    job_type: str,
    state: str,
    *,
    result: Any = None,
    error: str | None = None,
) -> str:
    """Record the outcome if this attempt still owns the row, then publish the event."""
    now = utcnow()
    with kernel.db.transaction() as db:
        values: dict[str, Any] = {"state": state, "finished_at": now, "error": error}
        if state == "succeeded":
            values.update(result=result, progress=100)
        done = db.execute(
            ctx.owned_update().values(**values),
            execution_options={"synchronize_session": False},
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            log.warning(
                "job %s: attempt %s ended %s but the record was taken over; not recorded",
                ctx.job_id,
                ctx.attempt,
                state,
            )
            return "lost"
        if error and state == "failed":
            db.add(JobLog(job_id=ctx.job_id, line=f"failed: {error}", created_at=now))
    publish_outcome(kernel, ctx.job_id, job_type, ctx.org_id, state, error)
    return state


def publish_outcome(
    kernel: Kernel, job_id: str, job_type: str, org_id: int | None, state: str, error: str | None
) -> None:
    """Publish job.succeeded / job.failed / job.cancelled (after the commit)."""
    from gakwaya.jobs.events import JobCancelledEvent, JobFailedEvent, JobSucceededEvent

    event: JobSucceededEvent | JobFailedEvent | JobCancelledEvent
    if state == "succeeded":
        event = JobSucceededEvent(org_id=org_id, job_id=job_id, job_type=job_type)
    elif state == "failed":
        event = JobFailedEvent(org_id=org_id, job_id=job_id, job_type=job_type, error=error or "")
    elif state == "cancelled":
        event = JobCancelledEvent(org_id=org_id, job_id=job_id, job_type=job_type)
    else:
        return
    try:
        kernel.events.publish(event)
    except Exception:
        log.exception("job %s: publishing %s failed", job_id, event.type_name)
