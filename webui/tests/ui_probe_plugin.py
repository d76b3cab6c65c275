"""A test plugin using every dashboard hook, as a third party would (SDK only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission, Role, Scope
from gakwaya_sdk.ui import AppCard, NavEntry, UiAction, UiContext, UiPage

MANIFEST = {"name": "gakwaya-probe", "version": "1.0", "core_api": ">=0.1,<0.2"}
TEMPLATES = Path(__file__).parent / "probe_templates"

#: What the submit function received, for the tests to read.
submitted: list[dict[str, Any]] = []


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return [
        Permission(
            name="probe.manage", description="Manage", min_role=Role.ADMIN, scope=Scope.WRITE
        )
    ]


async def members_page(ctx: UiContext) -> dict[str, Any]:
    members = await ctx.api.get(f"/orgs/{ctx.org}/members")
    return {"emails": [m["email"] for m in members["items"]], "org": ctx.org}


async def rename(ctx: UiContext) -> str:
    # Through the API, with the form's CSRF token: the API checks and audits it.
    submitted.append(dict(ctx.form))
    await ctx.api.patch(f"/orgs/{ctx.org}", json={"name": ctx.form["name"]})
    return f"/orgs/{ctx.org}"


def boom(ctx: UiContext) -> str:
    raise RuntimeError("probe exploded")


@hookimpl
def register_ui_pages() -> Sequence[UiPage]:
    return [
        UiPage(
            path="/p/probe/orgs/{org}/members",
            title="Probe members",
            content=members_page,
            template="members.html",
            templates=TEMPLATES,
        ),
        UiPage(
            path="/p/probe/orgs/{org}/rename",
            title="Rename",
            content=lambda ctx: Markup("<p>Rename <b>it</b></p>"),
            submit=rename,
            permission="probe.manage",
        ),
        UiPage(
            path="/p/probe/admin", title="Probe admin", content=lambda ctx: "<b>", superuser=True
        ),
        UiPage(path="/p/probe/boom", title="Boom", content=boom),
    ]


@hookimpl
def register_nav_entries() -> Sequence[NavEntry]:
    return [
        NavEntry(
            label="Probe rename", href="/p/probe/orgs/{org}/rename", permission="probe.manage"
        ),
        NavEntry(
            label="Probe admin", href="/p/probe/admin", section="installation", superuser=True
        ),
        NavEntry(label="Probe docs", href="/p/probe/boom", section="installation", order=1),
    ]


@hookimpl
def register_ui_actions() -> Sequence[UiAction]:
    return [
        UiAction(
            label="Rename via probe",
            href="/p/probe/orgs/{org}/rename",
            target="org",
            method="POST",
            permission="probe.manage",
            confirm="Rename this organization?",
        ),
        UiAction(label="Probe app", href="/p/probe/orgs/{org}/apps/{app_id}", target="app"),
    ]


@hookimpl
def register_app_cards() -> Sequence[AppCard]:
    return [
        AppCard(title="Probe card", content=lambda ctx: f"<app {ctx.app_id}>", order=2),
        AppCard(title="Broken card", content=boom, order=1),
        AppCard(title="Admins only", content=lambda ctx: "secret-ish", permission="probe.manage"),
    ]
