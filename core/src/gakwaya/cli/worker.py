"""``gakwaya worker`` (rq) and ``gakwaya jobs …``."""

from __future__ import annotations

import re
import socket
from typing import Any

import click

from gakwaya.cli.common import fail, kernel_or_exit, main, settings_or_exit

_QUEUE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")


@main.command()
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    default=("default",),
    show_default=True,
    help="Queue to take jobs from; repeat for several (earlier ones first).",
)
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run jobs from Redis (rq) until stopped.

    Needs GAKWAYA_REDIS_URL and the panel's database and secret key settings. Jobs
    run in this process, one at a time (start more workers for more at once): if
    the worker dies, its job dies with it and a reaper (in the panel or any worker)
    fails it or, when its type is retry-safe, runs it again. SIGTERM or Ctrl+C
    finish the current job and stop; a second one stops at once.
    """
    from gakwaya.kernel import Kernel, configure_logging
    from gakwaya.settings import SettingsError

    settings = settings_or_exit()
    if not settings.redis_url:
        fail(
            "gakwaya worker needs Redis: set GAKWAYA_REDIS_URL (redis://host:6379/0). "
            "Without Redis, `gakwaya serve` runs jobs in its own process.",
            code=2,
        )
    for name in queues:
        if not _QUEUE.match(name):
            fail(
                f"--queue {name!r}: 1 to 50 lowercase letters, digits, '-' and '_', "
                "starting with a letter",
                code=2,
            )
    configure_logging(settings.log_level)
    try:
        kernel = Kernel.create(settings)
    except SettingsError as exc:
        fail(f"bad setting: {exc}", code=2)
    _check_ready(kernel)

    from rq import SimpleWorker

    from gakwaya.jobs import runner

    runner.set_kernel(kernel)
    kernel.start_background()  # event relay and the reaper
    try:
        # SimpleWorker runs each job in this process (no fork): the job's heartbeat
        # thread lives and dies with it, and memory stays one interpreter's worth.
        rq_worker = SimpleWorker(
            list(queues),
            connection=kernel.redis,
            name=f"{socket.gethostname()}.{kernel.process_id.rpartition(':')[2]}",
            default_result_ttl=0,
        )
        click.secho(
            f"gakwaya worker {kernel.process_id} on queue(s) {', '.join(queues)}",
            dim=True,
            err=True,
        )
        rq_worker.work(burst=burst, logging_level=settings.log_level.upper())
    finally:
        kernel.close()
        runner.set_kernel(None)


def _check_ready(kernel: Any) -> None:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from gakwaya.db.models import Job

    try:
        kernel.redis.ping()
    except Exception as exc:
        fail(f"cannot reach Redis at GAKWAYA_REDIS_URL: {type(exc).__name__}: {exc}")
    try:
        with kernel.db.session() as db:
            db.execute(select(Job.id).limit(1))
    except SQLAlchemyError as exc:
        fail(
            "the database is not reachable or not migrated "
            f"({type(exc).__name__}); check GAKWAYA_DATABASE_URL and run `gakwaya migrate`"
        )
    from gakwaya.db.migrate import status

    # Jobs of a plugin whose tables are missing or old would fail one by one.
    states = status(kernel.db.engine, kernel.plugins.migration_dirs())
    behind = [state.name for state in states if state.pending]
    if behind:
        fail(
            f"the database needs migrations ({', '.join(behind)}): run `gakwaya migrate` "
            "(gakwaya serve also does at start-up)"
        )


@main.group()
def jobs() -> None:
    """Background jobs."""


@jobs.command("prune")
@click.option(
    "--job-days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete jobs finished more than this many days ago "
    "(default: GAKWAYA_JOB_RETENTION_DAYS, 30).",
)
@click.option(
    "--event-days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete events stored more than this many days ago "
    "(default: GAKWAYA_EVENT_RETENTION_DAYS, 30).",
)
def prune(job_days: int | None, event_days: int | None) -> None:
    """Delete old finished jobs, their logs and old events (the core.prune job).

    The job is recorded like any other and runs here, in the foreground.
    """
    import msgspec

    kernel = kernel_or_exit()
    try:
        arguments: dict[str, Any] = {}
        if job_days is not None:
            arguments["job_days"] = job_days
        if event_days is not None:
            arguments["event_days"] = event_days
        job = kernel.jobs.enqueue("core.prune", arguments=arguments, created_by="cli")
        state = kernel.jobs.run(job.id)
        done = kernel.jobs.get(job.id)
        if state == "skipped":
            click.echo(f"job {job.id} was taken by a worker; it is {done.state if done else '?'}")
            return
        if done is None or done.state != "succeeded":
            fail(f"job {job.id} {state}: {done.error if done else ''}")
        click.echo(msgspec.json.encode(done.result).decode())
    finally:
        kernel.close()


__all__ = ["jobs", "prune", "settings_or_exit", "worker"]
