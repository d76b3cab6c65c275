"""``gakwaya plugins list|enable|disable``."""

from __future__ import annotations

import click
import msgspec

from gakwaya.cli.common import fail, kernel_or_exit, main
from gakwaya.errors import GakwayaError
from gakwaya.plugins.state import set_enabled


@main.group("plugins")
def plugins_group() -> None:
    """See the plugins this installation loads; enable or disable them."""


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(as_json: bool) -> None:
    """Every plugin found, with status (active, disabled, refused, degraded) and reason."""
    kernel = kernel_or_exit()
    try:
        statuses = kernel.plugins.status_list()
    finally:
        kernel.db.dispose()
    if as_json:
        click.echo(msgspec.json.encode(statuses).decode())
        return
    for s in statuses:
        flags = " essential" if s.essential else ""
        reason = f"  ({s.reason})" if s.reason else ""
        click.echo(f"{s.name}\t{s.version or '-'}\t{s.status}{flags}{reason}")


def _change(name: str, enabled: bool) -> None:
    kernel = kernel_or_exit()
    try:
        set_enabled(kernel.db, kernel.plugins, name, enabled=enabled, by="cli")
    except GakwayaError as exc:
        fail(exc.detail)
    finally:
        kernel.db.dispose()
    word = "enabled" if enabled else "disabled"
    click.echo(f"plugin {name} {word}; restart gakwaya (serve and workers) to apply")


@plugins_group.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Enable a plugin for this installation (applies at the next restart)."""
    _change(name, True)


@plugins_group.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Disable a plugin for this installation (applies at the next restart)."""
    _change(name, False)
