"""Organizations as a built-in plugin: permissions, events, routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(
        name="org.read", description="See the organization", min_role=Role.VIEWER, scope=Scope.READ
    ),
    Permission(
        name="org.update",
        description="Rename the organization",
        min_role=Role.ADMIN,
        scope=Scope.ADMIN,
    ),
    Permission(
        name="org.delete",
        description="Delete the organization",
        min_role=Role.OWNER,
        scope=Scope.ADMIN,
    ),
    Permission(
        name="members.read",
        description="List members and roles",
        min_role=Role.VIEWER,
        scope=Scope.READ,
    ),
    Permission(
        name="members.manage",
        description="Change roles, remove members",
        min_role=Role.ADMIN,
        scope=Scope.ADMIN,
    ),
    Permission(
        name="invitations.read",
        description="List pending invitations",
        min_role=Role.ADMIN,
        scope=Scope.READ,
    ),
    Permission(
        name="invitations.manage",
        description="Invite people, revoke invitations",
        min_role=Role.ADMIN,
        scope=Scope.ADMIN,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    from gakwaya.orgs.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def register_routes() -> Sequence[Any]:
    # Imported here: the controllers import the kernel, which loads this module.
    from gakwaya.orgs.controllers import ROUTES

    return ROUTES
