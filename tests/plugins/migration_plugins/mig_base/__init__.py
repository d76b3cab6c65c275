"""mig-base: a plugin with one table."""

from pathlib import Path

from gakwaya_sdk import hookimpl

MANIFEST = {"name": "mig-base", "version": "1.0", "core_api": ">=0.1"}


@hookimpl
def register_migrations() -> str:
    return str(Path(__file__).parent / "migrations")
