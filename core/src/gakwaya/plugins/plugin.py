"""The plugin host's own routes and permissions, as a built-in plugin (``core.plugins``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    # Admins only, even to read: the values configure integrations (endpoints,
    # accounts) an organization would not show every member.
    Permission(
        name="plugin_settings.read",
        description="See the organization's plugin settings (secrets: only whether set)",
        min_role=Role.ADMIN,
        scope=Scope.READ,
    ),
    Permission(
        name="plugin_settings.write",
        description="Change the organization's plugin settings",
        min_role=Role.ADMIN,
        scope=Scope.WRITE,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_routes() -> Sequence[Any]:
    from gakwaya.plugins.controllers import (
        MARKETPLACE_ROUTES,
        plugins_disable,
        plugins_enable,
        plugins_list,
    )
    from gakwaya.plugins.settings_controllers import ROUTES as SETTINGS_ROUTES

    return [plugins_list, plugins_enable, plugins_disable, *SETTINGS_ROUTES, *MARKETPLACE_ROUTES]
