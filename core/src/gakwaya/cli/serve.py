"""``gakwaya serve`` and ``gakwaya migrate``."""

from __future__ import annotations

import os
from typing import Any

import click

from gakwaya.cli.common import _first_line, fail, kernel_or_exit, main, migrate_or_exit


@main.command()
@click.option(
    "--host", default=None, help="Address to listen on (GAKWAYA_HOST; default 127.0.0.1)."
)
@click.option(
    "--port", default=None, type=int, help="Port to listen on (GAKWAYA_PORT; default 8000)."
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="Server processes (GAKWAYA_WORKERS; default 1). Use one per CPU core; with more "
    "than one, configure Redis so that live streams see every process's events.",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the panel: migrate the database, then serve the API.

    On first start, with no user yet, prints a one-time setup link that creates the
    first administrator.
    """

    import uvicorn

    from gakwaya.app import create_app, settle_heap
    from gakwaya.identity.setup import issue_setup_token
    from gakwaya.kernel import configure_logging

    if port is not None and not 1 <= port <= 65535:
        fail("--port: must be between 1 and 65535", code=2)
    kernel = kernel_or_exit(host=host, port=port, workers=workers)
    settings = kernel.settings
    configure_logging(settings.log_level)
    base = settings.effective_base_url
    dialect = kernel.db.engine.dialect.name
    click.secho(f"Gakwaya {dialect} database at {_safe_url(kernel)}", dim=True)
    jobs = f"rq on {_safe_redis(settings.redis_url)}" if settings.redis_url else "in-process"
    click.secho(f"Jobs: {jobs}", dim=True)
    token = issue_setup_token(kernel)
    if token:
        click.secho("No administrator yet. Open this one-time link to create one:", fg="yellow")
        click.secho(f"  {base}/setup?token={token}", fg="yellow", bold=True)
        click.secho("  (or run: gakwaya admin create --email you@example.com)", dim=True)
    click.secho(
        f"Gakwaya is running at {base}  (API: {base}/api/v1, schema: {base}/schema/openapi.json)",
        fg="green",
        bold=True,
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "proxy_headers": False,  # the kernel decides whom to trust (trusted_proxies)
        "server_header": False,
        # Live streams (SSE) never close by themselves: do not wait for them forever.
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        app = create_app(kernel)
        settle_heap()
        uvicorn.run(app, **options)
        return
    # Each process builds its own kernel from the same settings: hand the command-line
    # overrides down through the environment.
    os.environ["GAKWAYA_HOST"] = settings.host
    os.environ["GAKWAYA_PORT"] = str(settings.port)
    os.environ["GAKWAYA_WORKERS"] = str(settings.workers)
    kernel.db.dispose()
    from gakwaya.cli._tcp import run_processes

    run_processes("gakwaya.app:create_served_app", settings.workers, options)


def _safe_url(kernel: Any) -> str:
    return str(kernel.db.engine.url.render_as_string(hide_password=True))


def _safe_redis(url: str) -> str:
    """The Redis URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1]


@main.command()
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Show each branch's current and newest revision; change nothing.",
)
def migrate(show_status: bool) -> None:
    """Apply database migrations: core's, then each active plugin's, in load order.

    A plugin whose migrations are refused is named with the reason on stderr, the
    others are still applied, and the command exits with status 1.
    """
    if show_status:
        _migration_status()
        return
    kernel = kernel_or_exit(migrate=False)
    refused = [state.name for state in migrate_or_exit(kernel) if state.error]
    kernel.db.dispose()
    if refused:
        click.secho(
            f"database at {_safe_url(kernel)} is up to date except for: {', '.join(refused)}",
            fg="yellow",
        )
        raise SystemExit(1)
    click.secho(f"database at {_safe_url(kernel)} is up to date", fg="green")


def _migration_status() -> None:
    from sqlalchemy.exc import OperationalError

    from gakwaya.db.migrate import status, stray_version_tables

    kernel = kernel_or_exit(migrate=False)
    try:
        states = status(kernel.db.engine, kernel.plugins.migration_dirs())
        stray = stray_version_tables(kernel.db.engine, states)
    except OperationalError as exc:
        fail(f"cannot use the database at {_safe_url(kernel)}: {_first_line(exc)}")
    finally:
        kernel.db.dispose()
    width = max(len(s.name) for s in states)
    for state in states:
        current = ", ".join(state.current) or "-"
        heads = ", ".join(state.heads) or "-"
        if state.error:
            verdict = state.error
        elif state.pending:
            verdict = "pending"
        else:
            verdict = "up to date"
        click.echo(f"{state.name:<{width}}  at {current}  newest {heads}  {verdict}")
    for table in stray:
        click.echo(f"{table}: no active plugin uses it; its tables are kept, not upgraded")


@main.command("secret-key")
def secret_key() -> None:
    """Print a new random value for GAKWAYA_SECRET_KEY."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())
