"""``gakwaya invitation`` and ``gakwaya org members``: people of an organization from
the server's command line.

The same services as ``/api/v1/orgs/{org}/invitations`` and ``.../members``. The
operator at the server's shell acts with an owner's reach (the CLI needs the database
and the secret key already), so any role may be invited; the audit records the
command as the actor.
"""

from __future__ import annotations

from typing import Any

import click

from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, org_group, publish, run, validated
from gakwaya.cli.project import each_page
from gakwaya_sdk.events import Event

ROLES = ["viewer", "developer", "admin", "owner"]


def _fmt(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@org_group.command("members")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
def members(org_slug: str) -> None:
    """Every member of the organization with their role."""
    from gakwaya.orgs import services

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = services.get_org_by_slug(db, org_slug)
            rows = each_page(lambda c: services.list_members(db, org.id, cursor=c, limit=200))
        click.echo(f"{'USER':>5}  {'ROLE':<9}  {'JOINED':<16}  EMAIL / NAME")
        for row in rows:
            click.echo(
                f"{row.user_id:>5}  {row.role:<9}  {_fmt(row.created_at):<16}  "
                f"{row.email}" + (f" / {row.name}" if row.name else "")
            )

    run(work)


@main.group("invitation")
def invitation_group() -> None:
    """Invite people to an organization by email, list and revoke invitations."""


@invitation_group.command("create")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.option("--email", required=True, help="The address to invite.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The role they get.")
def create(org_slug: str, email: str, role: str) -> None:
    """Invite an address and print its one-time link (valid 7 days).

    A pending invitation to the same address is replaced. Send the link yourself: it is
    not shown again.

    \b
    Example:
      gakwaya invitation create --org acme --email dev@example.com --role developer
    """
    from gakwaya.orgs import services
    from gakwaya.orgs.schemas import InvitationCreate
    from gakwaya_sdk.permissions import Role

    data = validated(InvitationCreate, {}, email=email, role=role)

    def work(kernel: Any) -> None:
        events: list[Event] = []
        with kernel.db.transaction() as db:
            org = services.get_org_by_slug(db, org_slug)
            inv, token = services.create_invitation(
                db,
                org_id=org.id,
                email=data.email,
                role=data.role,
                inviter_id=None,
                inviter_role=Role.OWNER,
                events=events,
            )
            inv_id, org_id, address, expires = inv.id, org.id, inv.email, inv.expires_at
        publish(kernel, events)
        audit(
            kernel,
            "invitation create",
            "invitations_create",
            org_id=org_id,
            target_type="invitation",
            target_id=str(inv_id),
            detail={"email": address, "role": data.role.value},
        )
        click.secho(
            f"invitation {inv_id}: {address} as {data.role.value} in {org_slug!r}, "
            f"valid until {_fmt(expires)} UTC; the link:",
            fg="green",
        )
        click.echo(services.invitation_url(kernel.settings.effective_base_url, token))
        click.secho(
            "Send it to them now: it is not shown again (only its digest is kept).",
            fg="yellow",
            err=True,
        )

    run(work)


@invitation_group.command("list")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.option("--all", "everything", is_flag=True, help="Also accepted, revoked, expired.")
def list_(org_slug: str, everything: bool) -> None:
    """Pending invitations (never their links)."""
    from gakwaya.orgs import services

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = services.get_org_by_slug(db, org_slug)
            rows = each_page(
                lambda c: services.list_invitations(
                    db, org.id, pending_only=not everything, cursor=c, limit=200
                )
            )
        if not rows:
            which = "invitations" if everything else "pending invitations"
            click.echo(f"no {which} in {org_slug!r}")
            return
        click.echo(f"{'ID':>5}  {'STATUS':<8}  {'ROLE':<9}  {'EXPIRES':<16}  EMAIL (INVITED BY)")
        for inv, inviter in rows:
            click.echo(
                f"{inv.id:>5}  {services.invitation_status(inv):<8}  {inv.role:<9}  "
                f"{_fmt(inv.expires_at):<16}  {inv.email} ({inviter or 'gakwaya CLI'})"
            )

    run(work)


@invitation_group.command("revoke")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.argument("invitation_id", type=int)
def revoke(org_slug: str, invitation_id: int) -> None:
    """Revoke an invitation: its link stops working at once."""
    from gakwaya.orgs import services

    if invitation_id < 1:
        fail("INVITATION_ID: must be a positive number (see: gakwaya invitation list)", code=2)

    def work(kernel: Any) -> None:
        events: list[Event] = []
        with kernel.db.transaction() as db:
            org = services.get_org_by_slug(db, org_slug)
            inv = services.revoke_invitation(
                db, org_id=org.id, invitation_id=invitation_id, actor_id=None, events=events
            )
            org_id, address = org.id, inv.email
        publish(kernel, events)
        if not events:
            click.echo(f"invitation {invitation_id} ({address}) was already revoked")
            return
        audit(
            kernel,
            "invitation revoke",
            "invitations_revoke",
            org_id=org_id,
            target_type="invitation",
            target_id=str(invitation_id),
            detail={"email": address},
        )
        click.secho(f"revoked invitation {invitation_id} ({address})", fg="green")

    run(work)
