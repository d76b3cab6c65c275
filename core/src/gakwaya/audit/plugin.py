"""The audit log as a built-in plugin: permission and the list route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(
        name="audit.read",
        description="Read the organization's audit log",
        min_role=Role.ADMIN,
        scope=Scope.READ,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_routes() -> Sequence[Any]:
    from gakwaya.audit.controllers import audit_list

    return [audit_list]
