"""``gakwaya org``: organizations from the server's command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import msgspec

from gakwaya.cli.common import fail, kernel_or_exit, main
from gakwaya.errors import GakwayaError
from gakwaya_sdk.events import Event
from gakwaya_sdk.types import Email, describe_pattern

S = TypeVar("S")


class _Owner(msgspec.Struct):
    email: Email


def validated(struct: type[S], options: dict[str, str], **values: Any) -> S:
    """Check CLI values with the API's own request Struct; a bad one stops with the
    option's name and the rule (``--slug: 1 to 40 lowercase letters…``)."""
    try:
        return msgspec.convert(values, struct)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = ""
        if " - at `$." in message:
            message, _, where = message.rpartition(" - at `$.")
            field = where.rstrip("`").split("[")[0]
        if "matching regex '" in message:
            pattern = message.split("matching regex '", 1)[1].rsplit("'", 1)[0]
            message = describe_pattern(pattern.replace("\\\\", "\\"))
        option = options.get(field, f"--{field.replace('_', '-')}" if field else "input")
        fail(f"{option}: {message[:1].lower()}{message[1:]}", code=2)


@contextmanager
def cli_errors() -> Iterator[None]:
    """A service error becomes one red line and exit status 1."""
    try:
        yield
    except GakwayaError as exc:
        fail(exc.detail)


def publish(kernel: Any, events: list[Event]) -> None:
    from gakwaya.orgs.events import publish_all

    publish_all(kernel, events)


def audit(kernel: Any, command: str, action: str, **values: Any) -> None:
    kernel.audit.record(
        action=action,
        outcome="success",
        actor_type="cli",
        actor_label=f"gakwaya {command}",
        **values,
    )


def run(work: Callable[[Any], None]) -> None:
    kernel = kernel_or_exit()
    try:
        with cli_errors():
            work(kernel)
    finally:
        kernel.db.dispose()


@main.group("org")
def org_group() -> None:
    """Manage organizations from the server's command line."""


@org_group.command("create")
@click.option("--slug", required=True, help="URL name: lowercase letters, digits, hyphens.")
@click.option("--name", required=True, help="Display name.")
@click.option("--owner-email", required=True, help="Email of the existing user who owns it.")
def create(slug: str, name: str, owner_email: str) -> None:
    """Create an organization owned by an existing user.

    \b
    Example:
      gakwaya org create --slug acme --name "Acme Inc" --owner-email you@example.com
    """
    from gakwaya.orgs import services
    from gakwaya.orgs.schemas import OrgCreate

    data = validated(OrgCreate, {}, slug=slug, name=name)
    validated(_Owner, {"email": "--owner-email"}, email=owner_email)

    def work(kernel: Any) -> None:
        events: list[Event] = []
        with kernel.db.transaction() as db:
            owner = services.find_user_by_email(db, owner_email)
            if owner is None:
                fail(f"--owner-email: no account with the address {owner_email}; create it first")
            org = services.create_org(
                db, slug=data.slug, name=data.name, owner_id=owner.id, events=events
            )
            org_id, owner_id = org.id, owner.id
        publish(kernel, events)
        audit(
            kernel,
            "org create",
            "orgs_create",
            org_id=org_id,
            target_type="org",
            target_id=str(org_id),
            detail={"slug": data.slug, "owner_id": owner_id},
        )
        click.secho(
            f"created organization {data.slug!r} (id {org_id}) owned by {owner_email}",
            fg="green",
        )

    run(work)


@org_group.command("list")
def list_() -> None:
    """Every organization with its member count and owners."""
    from gakwaya.orgs import services

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            rows = services.list_all_orgs(db)
        if not rows:
            click.echo("no organizations yet (create one with: gakwaya org create)")
            return
        click.echo(f"{'ID':>5}  {'SLUG':<40}  {'MEMBERS':>7}  NAME / OWNERS")
        for org, members, owners in rows:
            click.echo(
                f"{org.id:>5}  {org.slug:<40}  {members:>7}  {org.name} / {', '.join(owners)}"
            )

    run(work)
