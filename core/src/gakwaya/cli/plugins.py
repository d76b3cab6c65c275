"""``gakwaya plugins list|enable|disable|search|info|install|upgrade|remove|sync``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec

from gakwaya.cli.common import fail, kernel_or_exit, main, settings_or_exit
from gakwaya.errors import GakwayaError
from gakwaya.plugins.installer import (
    RESTART,
    Installer,
    Outcome,
    apply_enabled,
    parse_requirement,
)
from gakwaya.plugins.state import set_enabled
from gakwaya.settings import SettingsError


@main.group("plugins")
def plugins_group() -> None:
    """See the plugins this installation loads, enable or disable them; find, install,
    upgrade and remove plugins from the signed marketplace index."""


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
        installer = _installer(kernel)
        locked = installer.set_lock_enabled(name, enabled)
    except GakwayaError as exc:
        fail(exc.detail)
    finally:
        kernel.db.dispose()
    word = "enabled" if enabled else "disabled"
    if locked:
        click.echo(f"recorded in {installer.lock_path}")
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


# The marketplace ---------------------------------------------------------------------------

_INDEX_OPTION = click.option(
    "--index",
    "index",
    default=None,
    metavar="URL|PATH",
    help="Signed index to use instead of the plugin_index_url setting.",
)


def _installer(kernel: Any | None = None) -> Installer:
    """The installer for these settings; a bad blocklist file stops with one line."""
    try:
        if kernel is not None:
            return Installer.from_settings(kernel.settings, blocklist=kernel.plugins.blocklist)
        return Installer.from_settings(settings_or_exit())
    except SettingsError as exc:
        fail(f"bad setting: {exc}", code=2)


def _report(outcome: Outcome, *, lock: Path | None = None) -> None:
    for change in outcome.changes:
        click.echo(change.line())
    if not outcome.restart_required:
        click.echo("nothing changed")
        return
    if lock is not None:
        click.echo(f"recorded in {lock}")
    click.echo(RESTART)


def _change_plugins(action: Callable[[Installer], Outcome], *, records: bool = True) -> None:
    """Run a changing operation with the database at hand, so the host's enable/disable
    state follows the lock's ``enabled``."""
    kernel = kernel_or_exit()
    try:
        installer = _installer(kernel)
        outcome = action(installer)
        apply_enabled(kernel.db, outcome.changes, by="cli")
    except GakwayaError as exc:
        fail(exc.detail)
    finally:
        kernel.db.dispose()
    _report(outcome, lock=installer.lock_path if records else None)


@plugins_group.command("search")
@click.argument("query", required=False, default="")
@_INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(query: str, index: str | None, as_json: bool) -> None:
    """Plugins of the signed index whose name, summary or capabilities contain QUERY."""
    try:
        result = _installer().search(query, index=index)
    except GakwayaError as exc:
        fail(exc.detail)
    if as_json:
        click.echo(msgspec.json.encode(result).decode())
        return
    if not result.items:
        click.echo(f"no plugin matches in {result.index}")
    for item in result.items:
        latest = item.latest or "-"
        installed = f"  (installed {item.installed})" if item.installed else ""
        note = "" if item.latest else f"  [not installable: {item.reason}]"
        click.echo(f"{item.name}\t{latest}\t{item.summary}{installed}{note}")


@plugins_group.command("info")
@click.argument("name")
@_INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(name: str, index: str | None, as_json: bool) -> None:
    """A plugin's versions in the signed index, and which this panel can install."""
    try:
        result = _installer().info(name, index=index)
    except GakwayaError as exc:
        fail(exc.detail)
    if as_json:
        click.echo(msgspec.json.encode(result).decode())
        return
    click.echo(f"{result.name} (plugin {result.plugin or '?'}): {result.summary}")
    if result.homepage:
        click.echo(f"homepage: {result.homepage}")
    click.echo(f"index: {result.index}")
    click.echo(f"latest installable: {result.latest or 'none'}")
    click.echo(f"installed: {result.installed or 'no'}")
    for v in result.versions:
        state = "ok" if v.installable else v.reason
        click.echo(f"  {v.version}\tcore_api {v.core_api}\t{v.published_at.date()}\t{state}")


@plugins_group.command("install")
@click.argument("spec", metavar="NAME[==VERSION]")
@_INDEX_OPTION
def install(spec: str, index: str | None) -> None:
    """Install a plugin from the signed index: the newest release this panel can load,
    or exactly VERSION. Wheels only, sha256 required; recorded in plugins.lock."""
    try:
        name, version = parse_requirement(spec)
    except GakwayaError as exc:
        fail(exc.detail)
    _change_plugins(lambda i: i.install(name, version, index=index))


@plugins_group.command("upgrade")
@click.argument("name")
@_INDEX_OPTION
def upgrade(name: str, index: str | None) -> None:
    """Move an installed plugin to the newest release this panel can load."""
    _change_plugins(lambda i: i.upgrade(name, index=index))


@plugins_group.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Uninstall a plugin the marketplace installed and drop it from plugins.lock."""
    _change_plugins(lambda i: i.remove(name))


@plugins_group.command("sync")
@_INDEX_OPTION
def sync(index: str | None) -> None:
    """Install exactly what plugins.lock lists (checking each wheel's sha256 against the
    lock) and uninstall marketplace plugins it does not list."""
    _change_plugins(lambda i: i.sync(index=index), records=False)
