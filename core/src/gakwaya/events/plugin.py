"""Events as a built-in plugin: permission and routes (list, live stream)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(
        name="events.read",
        description="Read and stream the organization's events",
        min_role=Role.VIEWER,
        scope=Scope.READ,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_routes() -> Sequence[Any]:
    from gakwaya.events.controllers import events_list, events_stream

    return [events_list, events_stream]
