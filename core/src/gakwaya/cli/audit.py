"""``gakwaya audit verify`` and ``gakwaya audit list``."""

from __future__ import annotations

import click
import msgspec

from gakwaya.cli.common import fail, kernel_or_exit, main
from gakwaya.errors import GakwayaError


@main.group("audit")
def audit_group() -> None:
    """Check and read the hash-chained audit log."""


@audit_group.command("verify")
def verify() -> None:
    """Walk the whole audit chain; exit 1 at the first edited, inserted or deleted row."""
    kernel = kernel_or_exit()
    try:
        result = kernel.audit.verify()
    finally:
        kernel.db.dispose()
    if result.ok:
        click.secho(f"audit log intact: {result.rows} rows", fg="green")
        return
    where = f" (first bad row id: {result.first_bad_id})" if result.first_bad_id else ""
    fail(f"audit log tampered with: {result.problem}{where}")


@audit_group.command("list")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.option("--action", default=None, help="An operationId; a trailing * matches a prefix.")
@click.option("--actor", default=None, help="An actor id, or part of the actor's email.")
@click.option(
    "--outcome",
    default=None,
    type=click.Choice(["success", "denied", "failure", "error"]),
)
@click.option("--target-type", default=None)
@click.option("--target-id", default=None)
@click.option("--since", default=None, help="ISO 8601, inclusive (2025-01-31T12:00:00Z).")
@click.option("--until", default=None, help="ISO 8601, exclusive.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(
    org_slug: str,
    action: str | None,
    actor: str | None,
    outcome: str | None,
    target_type: str | None,
    target_id: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest audit rows of one organization."""
    from gakwaya.audit import services

    kernel = kernel_or_exit()
    try:
        flt = services.make_filter(
            action=action,
            actor=actor,
            outcome=outcome,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
        )
        with kernel.db.session() as db:
            org = services.org_by_slug(db, org_slug)
            rows, _ = services.list_entries(db, org.id, flt, limit=limit)
            entries = [services.to_entry(r) for r in rows]
    except GakwayaError as exc:
        fail(_option_words(exc.detail))
    finally:
        kernel.db.dispose()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(entries), indent=2).decode())
        return
    if not entries:
        click.echo("no audit rows match")
        return
    for e in entries:
        target = f"{e.target_type}:{e.target_id}" if e.target_type else "-"
        click.echo(
            f"{e.id:>8}  {e.created_at:%Y-%m-%d %H:%M:%S}Z  {e.outcome:<7}  "
            f"{e.action:<28}  {target:<24}  {e.actor_label or e.actor_type}  {e.ip or '-'}"
        )


def _option_words(detail: str) -> str:
    """'target_type: …' → '--target-type: …', so the message names the option typed."""
    field, sep, rest = detail.partition(": ")
    if sep and field.isidentifier():
        return f"--{field.replace('_', '-')}: {rest}"
    return detail
