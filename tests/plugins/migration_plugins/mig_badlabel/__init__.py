"""mig-badlabel: its branch is labelled with a name that is not the plugin's."""

from pathlib import Path

from gakwaya_sdk import hookimpl

MANIFEST = {"name": "mig-badlabel", "version": "1.0", "core_api": ">=0.1"}


@hookimpl
def register_migrations() -> str:
    return str(Path(__file__).parent / "migrations")
