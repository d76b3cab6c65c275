"""``gakwaya plugins settings show|set|unset``: plugin settings from the server's
command line, through the same service as the API (and audited as ``cli``)."""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from gakwaya.cli.common import fail, kernel_or_exit
from gakwaya.cli.plugins import plugins_group
from gakwaya.db.models import Organization
from gakwaya.errors import FieldError, GakwayaError
from gakwaya.plugins import settings as service
from gakwaya.plugins.settings import SettingsInvalid, SettingsView

ORG_HELP = "An organization's slug: its own values of organization-scoped settings."


@plugins_group.group("settings")
def settings_group() -> None:
    """Show and change a plugin's settings (installation-wide, or one organization's)."""


def _org(session: Session, slug: str | None) -> Organization | None:
    if slug is None:
        return None
    org = session.scalars(select(Organization).where(Organization.slug == slug)).first()
    if org is None:
        fail(f"--org: organization {slug!r} not found")
    return org


def _field_errors(exc: FieldError) -> str:
    """The API names fields ``values.<name>``; here they are the KEYs typed."""
    problems = exc.problems if isinstance(exc, SettingsInvalid) else [(exc.field, exc.rule)]
    return "; ".join(f"{field.removeprefix('values.')}: {rule}" for field, rule in problems)


def _show_text(view: SettingsView) -> None:
    where = f" for organization {view.org}" if view.org else " (installation)"
    if not view.settings:
        click.echo(f"plugin {view.plugin} has no settings{where}")
        return
    click.echo(f"plugin {view.plugin}{where}:")
    for s in view.settings:
        if s.secret:
            shown = "(secret, set)" if s.is_set else "(secret, not set)"
        else:
            shown = msgspec.json.encode(s.value).decode()
        flags = [s.type, s.scope, f"from {s.source}"]
        if s.required:
            flags.append("required")
        click.echo(f"  {s.name} = {shown}  [{', '.join(flags)}]")
    if view.missing:
        click.echo(f"missing (required, not set): {', '.join(view.missing)}")


@settings_group.command("show")
@click.argument("name")
@click.option("--org", "org_slug", metavar="SLUG", help=ORG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API answers.")
def show(name: str, org_slug: str | None, as_json: bool) -> None:
    """A plugin's settings and where each value comes from; secrets are never shown."""
    kernel = kernel_or_exit()
    try:
        with kernel.db.session() as session:
            org = _org(session, org_slug)
            view = service.view(
                kernel,
                session,
                name,
                org_id=org.id if org else None,
                org_slug=org.slug if org else None,
            )
    except GakwayaError as exc:
        fail(exc.detail)
    finally:
        kernel.db.dispose()
    if as_json:
        click.echo(msgspec.json.encode(view).decode())
    else:
        _show_text(view)


def _parse(kernel: Any, plugin: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` → {KEY: value}. VALUE is JSON when it parses (``8080``,
    ``true``, ``["a","b"]``), else text; a ``str`` setting always takes the text as
    typed. ``KEY=-`` reads the value from standard input (one trailing newline
    dropped), so a secret stays out of the shell's history and ``ps``."""
    try:
        fields = {f.name: f for f in service.manifest_of(kernel, plugin).settings}
    except GakwayaError as exc:
        fail(exc.detail)
    values: dict[str, Any] = {}
    stdin_used = False
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            fail(f"{pair!r}: expected KEY=VALUE (KEY=- reads the value from stdin)", code=2)
        if key in values:
            fail(f"{key}: given twice", code=2)
        if text == "-":
            if stdin_used:
                fail(f"{key}: only one KEY=- can read standard input", code=2)
            stdin_used = True
            text = sys.stdin.read()
            text = text.removesuffix("\n").removesuffix("\r")
        field = fields.get(key)
        if field is not None and field.type == "str":
            values[key] = text
            continue
        try:
            values[key] = msgspec.json.decode(text)
        except msgspec.DecodeError:
            values[key] = text
    return values


def _write(
    kernel: Any, name: str, org_slug: str | None, values: dict[str, Any], command: str
) -> None:
    try:
        with kernel.db.transaction() as session:
            org = _org(session, org_slug)
            org_id = org.id if org else None
            changed, unset = service.update(kernel, session, name, values, org_id=org_id, by="cli")
            kernel.audit.record(
                action="org_plugin_settings_update" if org else "plugin_settings_update",
                outcome="success",
                actor_type="cli",
                actor_label=f"gakwaya plugins settings {command}",
                org_id=org_id,
                target_type="plugin",
                target_id=name,
                detail={"settings_set": changed, "settings_unset": unset},
                session=session,
            )
    except FieldError as exc:
        fail(_field_errors(exc), code=2)
    except GakwayaError as exc:
        fail(exc.detail)
    where = f" for organization {org_slug}" if org_slug else ""
    if changed:
        click.echo(f"plugin {name}{where}: set {', '.join(changed)}")
    if unset:
        click.echo(f"plugin {name}{where}: unset {', '.join(unset)} (back to the default)")
    click.echo("in effect now; no restart needed")


@settings_group.command("set")
@click.argument("name")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--org", "org_slug", metavar="SLUG", help=ORG_HELP)
def set_(name: str, pairs: tuple[str, ...], org_slug: str | None) -> None:
    """Set settings, all or nothing. VALUE is JSON when it parses (8080, true,
    '["a","b"]'), else text; a str setting takes the text as typed. KEY=- reads the
    value from standard input (for secrets)."""
    kernel = kernel_or_exit()
    try:
        _write(kernel, name, org_slug, _parse(kernel, name, pairs), "set")
    finally:
        kernel.db.dispose()


@settings_group.command("unset")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@click.option("--org", "org_slug", metavar="SLUG", help=ORG_HELP)
def unset(name: str, keys: tuple[str, ...], org_slug: str | None) -> None:
    """Remove stored values: the installation's value (for --org) or the manifest's
    default applies again."""
    kernel = kernel_or_exit()
    try:
        _write(kernel, name, org_slug, dict.fromkeys(keys), "unset")
    finally:
        kernel.db.dispose()
