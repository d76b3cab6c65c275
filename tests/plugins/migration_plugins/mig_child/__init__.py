"""mig-child: requires mig-base; its table refers to mig-base's."""

from pathlib import Path

from gakwaya_sdk import hookimpl

MANIFEST = {"name": "mig-child", "version": "1.0", "core_api": ">=0.1", "requires": ["mig-base"]}


@hookimpl
def register_migrations() -> str:
    return str(Path(__file__).parent / "migrations")
