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


def kernel_or_exit(**overrides: Any) -> Any:
    """Settings → kernel, with the database migrated to the newest revision."""
    from gakwaya.db.migrate import upgrade
    from gakwaya.kernel import Kernel

    settings = settings_or_exit(**overrides)
    try:
        kernel = Kernel.create(settings)
    except SettingsError as exc:
        fail(f"bad setting: {exc}", code=2)
    upgrade(kernel.db.engine)
    return kernel


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gakwaya")
def main() -> None:
    """Gakwaya: a self-hosted platform-as-a-service panel.

    Settings come from GAKWAYA_* environment variables and an optional TOML file
    (GAKWAYA_CONFIG, or gakwaya.toml in GAKWAYA_DATA_DIR).
    """
