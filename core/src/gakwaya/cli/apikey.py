"""``gakwaya apikey``: create, list and revoke API keys from the server's command line.

The key is created for a member of the organization, within what that member's
role allows (the same service as ``POST /api/v1/orgs/{org}/api-keys``).
"""

from __future__ import annotations

from typing import Any

import click

from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, publish, run, validated
from gakwaya.cli.project import each_page
from gakwaya_sdk.events import Event

SCOPES = ["read", "deploy", "write", "admin"]


@main.group("apikey")
def apikey_group() -> None:
    """Manage API keys of organization members."""


def _fmt(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@apikey_group.command("create")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.option("--email", required=True, help="The member the key acts as.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeat for several: read, deploy, write, admin.",
)
@click.option("--name", default="cli", show_default=True, help="A label to recognise the key.")
@click.option("--expires-in-days", type=int, default=None, help="1 to 3650; default: never.")
def create(
    org_slug: str, email: str, scopes: tuple[str, ...], name: str, expires_in_days: int | None
) -> None:
    """Create a key and print it once.

    \b
    Example:
      gakwaya apikey create --org acme --email you@example.com --scope read --scope deploy
    """
    from gakwaya.apikeys import services
    from gakwaya.apikeys.schemas import ApiKeyCreate
    from gakwaya.orgs import services as orgs
    from gakwaya_sdk.permissions import Role

    data = validated(
        ApiKeyCreate,
        {"scopes": "--scope"},
        name=name,
        scopes=list(scopes),
        expires_in_days=expires_in_days,
    )

    def work(kernel: Any) -> None:
        events: list[Event] = []
        expires_at = services.resolve_expiry(expires_in_days=data.expires_in_days, expires_at=None)
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            user = orgs.find_user_by_email(db, email)
            if user is None:
                fail(f"--email: no account with the address {email}")
            member = orgs.find_member(db, org.id, user.id)
            if member is None:
                fail(f"--email: {email} is not a member of {org_slug!r}")
            key, secret = services.create_key(
                db,
                org_id=org.id,
                user_id=user.id,
                role=Role(member.role),
                name=data.name,
                scopes=data.scopes,
                expires_at=expires_at,
                key_scopes=None,
                created_by=None,
                events=events,
            )
            key_id, org_id, prefix, stored = key.id, org.id, key.prefix, list(key.scopes)
        publish(kernel, events)
        audit(
            kernel,
            "apikey create",
            "api_keys_create",
            org_id=org_id,
            target_type="api_key",
            target_id=str(key_id),
            detail={"prefix": prefix, "scopes": stored, "user_id": user.id},
        )
        click.secho(
            f"API key {key_id} for {email} in {org_slug!r} ({', '.join(stored)}):", fg="green"
        )
        click.echo(secret)
        click.secho(
            "Store it now: it is not shown again (only its digest is kept). "
            "Use it as 'Authorization: Bearer <key>'.",
            fg="yellow",
            err=True,
        )

    run(work)


@apikey_group.command("list")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
def list_(org_slug: str) -> None:
    """Every key of the organization (never the key itself: its prefix)."""
    from gakwaya.apikeys import services
    from gakwaya.apikeys.controllers import key_status
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            rows = each_page(
                lambda c: services.list_keys(db, org.id, user_id=None, cursor=c, limit=200)
            )
        if not rows:
            click.echo(f"no API keys in {org_slug!r}")
            return
        click.echo(
            f"{'ID':>5}  {'PREFIX':<12}  {'STATUS':<8}  {'SCOPES':<24}  {'EXPIRES':<16}  "
            f"{'LAST USED':<16}  OWNER / NAME"
        )
        for key, owner in rows:
            click.echo(
                f"{key.id:>5}  {key.prefix:<12}  {key_status(key):<8}  "
                f"{','.join(key.scopes):<24}  {_fmt(key.expires_at):<16}  "
                f"{_fmt(key.last_used_at):<16}  {owner} / {key.name}"
            )

    run(work)


@apikey_group.command("revoke")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.argument("key_id", type=int)
def revoke(org_slug: str, key_id: int) -> None:
    """Revoke a key at once (it stops working on the next request)."""
    from gakwaya.apikeys import services
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        events: list[Event] = []
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            key = services.revoke_key(
                db, org_id=org.id, key_id=key_id, actor_id=None, actor_role=None, events=events
            )
            org_id, prefix = org.id, key.prefix
        publish(kernel, events)
        if events:
            audit(
                kernel,
                "apikey revoke",
                "api_keys_revoke",
                org_id=org_id,
                target_type="api_key",
                target_id=str(key_id),
                detail={"prefix": prefix},
            )
            click.secho(f"revoked API key {key_id} ({prefix}…)", fg="green")
        else:
            click.echo(f"API key {key_id} ({prefix}…) was already revoked")

    run(work)
