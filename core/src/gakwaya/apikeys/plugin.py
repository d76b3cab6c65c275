"""API keys as a built-in plugin: permissions, events, routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(
        name="api_keys.read",
        description="List API keys (your own; admins: all)",
        min_role=Role.VIEWER,
        scope=Scope.READ,
    ),
    Permission(
        name="api_keys.manage",
        description="Create and revoke API keys (yours; admins: any)",
        min_role=Role.VIEWER,
        scope=Scope.ADMIN,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    from gakwaya.apikeys.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def register_routes() -> Sequence[Any]:
    # Imported here: the controllers import the kernel, which loads this module.
    from gakwaya.apikeys.controllers import ROUTES

    return ROUTES
