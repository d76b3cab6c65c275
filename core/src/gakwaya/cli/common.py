"""Shared CLI plumbing."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from gakwaya import __version__
from gakwaya.settings import Settings, SettingsError, load_settings


def fail(message: str, code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(f"bad setting: {exc}", code=2)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def kernel_or_exit(*, migrate: bool = True, **overrides: Any) -> Any:
    """Settings → kernel, with the database migrated to the newest revision (core and
    every active plugin's branch; a refused plugin branch is a warning on stderr).

    A bad setting exits 2, a database that cannot be reached exits 1; either way
    with one line, not a traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from gakwaya.kernel import Kernel

    settings = settings_or_exit(**overrides)
    try:
        make_url(settings.effective_database_url)
    except (ArgumentError, ValueError) as exc:
        fail(f"bad setting: database_url: {_first_line(exc)}", code=2)
    try:
        kernel = Kernel.create(settings)
    except SettingsError as exc:
        fail(f"bad setting: {exc}", code=2)
    except ArgumentError as exc:  # e.g. an unknown driver in the URL
        fail(f"bad setting: database_url: {_first_line(exc)}", code=2)
    except OSError as exc:
        fail(f"bad setting: data_dir: cannot use {settings.data_path}: {exc}", code=2)
    if migrate:
        migrate_or_exit(kernel)
    return kernel


def migrate_or_exit(kernel: Any) -> list[Any]:
    """Run :meth:`Kernel.migrate`; a refused plugin branch is a warning on stderr.
    Returns the branches' states (:class:`gakwaya.db.migrate.BranchState`)."""
    from sqlalchemy.exc import OperationalError

    try:
        states: list[Any] = kernel.migrate()
    except OperationalError as exc:
        where = kernel.db.engine.url.render_as_string(hide_password=True)
        kernel.db.dispose()
        fail(f"cannot use the database at {where}: {_first_line(exc)}", code=1)
    for state in states:
        if state.error:
            click.secho(f"warning: {state.error}", fg="yellow", err=True)
    return states


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gakwaya")
def main() -> None:
    """Gakwaya: a self-hosted platform-as-a-service panel.

    Settings come from GAKWAYA_* environment variables and an optional TOML file
    (GAKWAYA_CONFIG, or gakwaya.toml in GAKWAYA_DATA_DIR).
    """
