"""The plugin module the entry point names: its hook implementations.

It imports ``gakwaya_sdk`` and third-party libraries only, never the kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from litestar import get
from litestar.di import NamedDependency
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gakwaya_hello.tables import welcomes
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import OrgContext, Panel
from gakwaya_sdk.events import Event
from gakwaya_sdk.manifest import read_packaged_manifest
from gakwaya_sdk.permissions import Permission, Role, Scope
from gakwaya_sdk.ui import NavEntry, UiContext, UiPage, url_prefix

NAME = "gakwaya-hello"
# The packaged manifest is the one place the version is read from at run time.
_manifest = read_packaged_manifest("gakwaya_hello")
VERSION = _manifest.version if _manifest else "0"


class Greeting(msgspec.Struct, kw_only=True):
    message: str
    #: Members this plugin has welcomed in the organization (from its own table).
    welcomed: int
    version: str


@get(
    "/api/v1/orgs/{org:str}/hello",
    operation_id="hello_show",
    tags=["hello"],
    sync_to_thread=True,
    opt={"permission": "hello.greet"},
)
def hello_show(
    db: NamedDependency[Session],
    panel: NamedDependency[Panel],
    current_org: NamedDependency[OrgContext],
) -> Greeting:
    """Greet the organization with its configured word."""
    greeting = panel.settings(NAME, org_id=current_org.id)["greeting"]
    count = db.execute(
        select(func.count()).select_from(welcomes).where(welcomes.c.org_id == current_org.id)
    ).scalar_one()
    return Greeting(message=f"{greeting}, {current_org.name}!", welcomed=count, version=VERSION)


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return [
        Permission(
            name="hello.greet",
            description="Be greeted by the hello plugin",
            min_role=Role.VIEWER,
            scope=Scope.READ,
        )
    ]


@hookimpl
def register_routes() -> Sequence[Any]:
    return [hello_show]


# The dashboard ------------------------------------------------------------------------

#: Where this plugin's dashboard pages live: /p/hello.
PAGES = url_prefix(NAME)


async def greeting_page(ctx: UiContext) -> dict[str, Any]:
    """The organization's greeting, read from this plugin's own API route as the
    signed-in user: the API checks the membership and the permission, not this page."""
    body = await ctx.api.get(f"/orgs/{ctx.org}/hello")
    return {"message": body["message"], "welcomed": body["welcomed"], "org": ctx.org}


@hookimpl
def register_ui_pages() -> Sequence[UiPage]:
    return [
        UiPage(
            path=f"{PAGES}/orgs/{{org}}",
            title="Hello",
            content=greeting_page,
            template="greeting.html",
            templates=Path(__file__).parent / "templates",
            permission="hello.greet",
        )
    ]


@hookimpl
def register_nav_entries() -> Sequence[NavEntry]:
    return [NavEntry(label="Hello", href=f"{PAGES}/orgs/{{org}}", permission="hello.greet")]


@hookimpl
def register_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def on_event(event: Event, event_id: int, panel: Panel) -> None:
    """Welcome every new member: one row per (organization, user), whatever the retries."""
    if event.type_name != "member.added" or event.org_id is None:
        return
    user_id = getattr(event, "user_id", None)
    if not isinstance(user_id, int):
        return
    with panel.transaction() as session:
        seen = session.execute(
            select(welcomes.c.id).where(
                welcomes.c.org_id == event.org_id, welcomes.c.user_id == user_id
            )
        ).first()
        if seen is None:
            session.execute(
                welcomes.insert().values(org_id=event.org_id, user_id=user_id, event_id=event_id)
            )
