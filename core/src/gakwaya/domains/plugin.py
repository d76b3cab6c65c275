"""Domains as a built-in plugin: permissions, events, routes, and default domains for
new apps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(
        name="domains.read",
        description="See apps' domains, the DNS records they need and their certificates",
        min_role=Role.VIEWER,
        scope=Scope.READ,
    ),
    Permission(
        name="domains.write",
        description="Add and verify domains and change their options",
        min_role=Role.DEVELOPER,
        scope=Scope.WRITE,
    ),
    Permission(
        name="domains.delete",
        description="Remove domains (the proxies stop serving them)",
        min_role=Role.ADMIN,
        scope=Scope.ADMIN,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    from gakwaya.domains.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def register_routes() -> Sequence[Any]:
    from gakwaya.domains.controllers import ROUTES

    return ROUTES


@hookimpl
def on_event(event: Event, event_id: int, panel: Any) -> None:
    """A new app gets its default domain at once (the deploy pipeline and the
    reconciler also make sure of it, for apps older than the base domain setting)."""
    from gakwaya.deploy.events import AppCreated

    if isinstance(event, AppCreated):
        from gakwaya.domains.services import ensure_default_domains

        # A built-in plugin is kernel code: it may reach the kernel behind the panel.
        ensure_default_domains(panel._kernel, app_ids=[event.app_id])
