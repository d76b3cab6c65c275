"""Jobs as a built-in plugin: permissions, events, routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(name="jobs.read", description="See jobs, their progress and logs", min_role=Role.VIEWER, scope=Scope.READ),
    Permission(name="jobs.cancel", description="Cancel a queued or running job", min_role=Role.DEVELOPER, scope=Scope.DEPLOY),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_routes() -> Sequence[Any]:
    return []
