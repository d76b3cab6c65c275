"""HTTP routes of the plugin host: installation-wide, for superusers only."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gakwaya.auth.principal import Principal, set_audit_target
from gakwaya.errors import FieldError
from gakwaya.kernel import Kernel
from gakwaya.plugins.host import PluginStatus
from gakwaya.plugins.state import set_enabled
from gakwaya_sdk.manifest import NAME_PATTERN

API = "/api/v1"
_NAME = re.compile(NAME_PATTERN)


class PluginList(msgspec.Struct, kw_only=True):
    items: list[PluginStatus]


class PluginChange(msgspec.Struct, kw_only=True):
    name: str
    enabled: bool
    #: The plugin set is fixed for a process's life: restart to apply.
    restart_required: bool = True
    detail: str = ""


def _checked(name: str) -> str:
    if len(name) > 200 or not _NAME.match(name):
        raise FieldError("name", f"must match {NAME_PATTERN} (at most 200 characters)")
    return name


@get(
    f"{API}/plugins",
    operation_id="plugins_list",
    tags=["plugins"],
    sync_to_thread=False,
    opt={"superuser": True},
)
def plugins_list(kernel: NamedDependency[Kernel]) -> PluginList:
    """Every plugin this process found, with its status and reason (superusers only)."""
    return PluginList(items=kernel.plugins.status_list())


def _change(
    request: Request[Any, Any, Any], kernel: Kernel, principal: Principal, name: str, on: bool
) -> PluginChange:
    _checked(name)
    set_audit_target(request, "plugin", name, enabled=on)
    set_enabled(kernel.db, kernel.plugins, name, enabled=on, by=principal.email)
    word = "enabled" if on else "disabled"
    return PluginChange(
        name=name,
        enabled=on,
        detail=f"plugin {name!r} will be {word} at the next restart of every process",
    )


@post(
    f"{API}/plugins/{{name:str}}/enable",
    operation_id="plugins_enable",
    tags=["plugins"],
    sync_to_thread=True,
    status_code=200,
    opt={"superuser": True},
)
def plugins_enable(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    name: FromPath[str],
) -> PluginChange:
    """Enable a plugin for this installation; takes effect at the next restart."""
    return _change(request, kernel, principal, name, True)


@post(
    f"{API}/plugins/{{name:str}}/disable",
    operation_id="plugins_disable",
    tags=["plugins"],
    sync_to_thread=True,
    status_code=200,
    opt={"superuser": True},
)
def plugins_disable(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    name: FromPath[str],
) -> PluginChange:
    """Disable a plugin for this installation (409 if essential); applies at restart."""
    return _change(request, kernel, principal, name, False)
