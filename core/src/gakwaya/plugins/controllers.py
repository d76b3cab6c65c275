"""HTTP routes of the plugin host and the marketplace: installation-wide, for
superusers only (installing a plugin runs its code in every process)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from gakwaya.auth.principal import Principal, set_audit_target
from gakwaya.errors import FieldError
from gakwaya.kernel import Kernel
from gakwaya.plugins.host import PluginStatus
from gakwaya.plugins.installer import (
    Installer,
    Outcome,
    PluginInfo,
    SearchResult,
    apply_enabled,
)
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
    if len(name) > 200 or not _NAME.fullmatch(name):
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
    locked = _installer(kernel).set_lock_enabled(name, on)
    word = "enabled" if on else "disabled"
    return PluginChange(
        name=name,
        enabled=on,
        detail=f"plugin {name!r} will be {word} at the next restart of every process"
        + ("; recorded in plugins.lock" if locked else ""),
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


# The marketplace ---------------------------------------------------------------------------


class InstallRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: The plugin's distribution name, as the index lists it.
    name: Annotated[str, msgspec.Meta(max_length=200)]
    #: Exactly this version; default: the newest this panel can load.
    version: Annotated[str, msgspec.Meta(max_length=100)] | None = None


def _installer(kernel: Kernel) -> Installer:
    """The index, keys, lock and target Python come from the settings only: the API
    never lets a caller point the panel at another index."""
    return Installer.from_settings(kernel.settings, blocklist=kernel.plugins.blocklist)


def _applied(kernel: Kernel, principal: Principal, outcome: Outcome) -> Outcome:
    apply_enabled(kernel.db, outcome.changes, by=principal.email)
    return outcome


@get(
    f"{API}/marketplace/plugins",
    operation_id="marketplace_search",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"superuser": True},
)
def marketplace_search(
    kernel: NamedDependency[Kernel],
    q: Annotated[
        str,
        QueryParameter(
            description="words to find in a plugin's name, summary or capabilities",
            max_length=200,
        ),
    ] = "",
) -> SearchResult:
    """Plugins of the configured signed index, with the newest release this panel can
    install (502 when the index cannot be fetched, 409 when it is refused)."""
    return _installer(kernel).search(q)


@get(
    f"{API}/marketplace/plugins/{{name:str}}",
    operation_id="marketplace_show",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"superuser": True},
)
def marketplace_show(kernel: NamedDependency[Kernel], name: FromPath[str]) -> PluginInfo:
    """One plugin of the index: every version, and why a version cannot be installed."""
    return _installer(kernel).info(name)


@post(
    f"{API}/plugins/install",
    operation_id="plugins_install",
    tags=["plugins"],
    sync_to_thread=True,
    status_code=200,
    opt={"superuser": True},
)
def plugins_install(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    data: JSONBody[InstallRequest],
) -> Outcome:
    """Install a plugin from the signed index (wheel only, sha256 required) and record
    it in plugins.lock; ``restart_required``: restart serve and workers to load it."""
    set_audit_target(request, "plugin", data.name, version=data.version or "latest")
    return _applied(kernel, principal, _installer(kernel).install(data.name, data.version))


@post(
    f"{API}/plugins/{{name:str}}/upgrade",
    operation_id="plugins_upgrade",
    tags=["plugins"],
    sync_to_thread=True,
    status_code=200,
    opt={"superuser": True},
)
def plugins_upgrade(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    name: FromPath[str],
) -> Outcome:
    """Move an installed plugin to the newest release this panel can load."""
    set_audit_target(request, "plugin", name)
    return _applied(kernel, principal, _installer(kernel).upgrade(name))


@delete(
    f"{API}/plugins/{{name:str}}",
    operation_id="plugins_remove",
    tags=["plugins"],
    sync_to_thread=True,
    status_code=200,
    opt={"superuser": True},
)
def plugins_remove(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    name: FromPath[str],
) -> Outcome:
    """Uninstall a plugin the marketplace installed and drop it from plugins.lock."""
    set_audit_target(request, "plugin", name)
    return _installer(kernel).remove(name)


@post(
    f"{API}/plugins/sync",
    operation_id="plugins_sync",
    tags=["plugins"],
    sync_to_thread=True,
    status_code=200,
    opt={"superuser": True},
)
def plugins_sync(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
) -> Outcome:
    """Install exactly what plugins.lock lists and uninstall marketplace plugins it
    does not list; every wheel must match the lock's sha256."""
    set_audit_target(request, "plugins", "sync")
    return _applied(kernel, principal, _installer(kernel).sync())


MARKETPLACE_ROUTES = [
    marketplace_search,
    marketplace_show,
    plugins_install,
    plugins_upgrade,
    plugins_remove,
    plugins_sync,
]
