"""HTTP routes of plugin settings: the installation's (superusers) and each
organization's (its admins, for ``organization``-scoped settings only).

Responses never carry a secret's value, only whether it is set; audit rows name
the plugin and the settings changed, never their values.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext, Principal, set_audit_target
from gakwaya.errors import FieldError
from gakwaya.kernel import Kernel
from gakwaya.plugins import settings as service
from gakwaya.plugins.settings import SettingsView
from gakwaya_sdk.manifest import NAME_PATTERN

API = "/api/v1"
_NAME = re.compile(NAME_PATTERN)


class SettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: Setting name → new value, or ``null`` to go back to the default (for an
    #: organization: to the installation's value).
    values: dict[str, Any]


def _plugin_name(name: str) -> str:
    if len(name) > 200 or not _NAME.match(name):
        raise FieldError("name", f"must match {NAME_PATTERN} (at most 200 characters)")
    return name


def _apply(
    request: Request[Any, Any, Any],
    kernel: Kernel,
    db: Session,
    principal: Principal,
    name: str,
    data: SettingsUpdate,
    org: OrgContext | None,
) -> SettingsView:
    _plugin_name(name)
    set_audit_target(request, "plugin", name)
    org_id = org.id if org is not None else None
    changed, unset = service.update(
        kernel, db, name, data.values, org_id=org_id, by=principal.label
    )
    db.commit()
    # Names only: the values (secrets among them) stay out of the audit log.
    set_audit_target(request, "plugin", name, settings_set=changed, settings_unset=unset)
    return service.view(
        kernel, db, name, org_id=org_id, org_slug=org.slug if org is not None else None
    )


@get(
    f"{API}/plugins/{{name:str}}/settings",
    operation_id="plugin_settings_show",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"superuser": True},
)
def plugin_settings_show(
    kernel: NamedDependency[Kernel], db: NamedDependency[Session], name: FromPath[str]
) -> SettingsView:
    """A plugin's settings at installation level (secrets: only whether they are set)."""
    return service.view(kernel, db, _plugin_name(name))


@put(
    f"{API}/plugins/{{name:str}}/settings",
    operation_id="plugin_settings_update",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"superuser": True},
)
def plugin_settings_update(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    db: NamedDependency[Session],
    principal: NamedDependency[Principal],
    name: FromPath[str],
    data: JSONBody[SettingsUpdate],
) -> SettingsView:
    """Set or unset (``null``) installation values, all or nothing; applies at once."""
    return _apply(request, kernel, db, principal, name, data, None)


@get(
    f"{API}/orgs/{{org:str}}/plugins/{{name:str}}/settings",
    operation_id="org_plugin_settings_show",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"permission": "plugin_settings.read"},
)
def org_plugin_settings_show(
    kernel: NamedDependency[Kernel],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    name: FromPath[str],
) -> SettingsView:
    """The organization-scoped settings of a plugin, as this organization gets them."""
    return service.view(
        kernel, db, _plugin_name(name), org_id=current_org.id, org_slug=current_org.slug
    )


@put(
    f"{API}/orgs/{{org:str}}/plugins/{{name:str}}/settings",
    operation_id="org_plugin_settings_update",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"permission": "plugin_settings.write"},
)
def org_plugin_settings_update(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    db: NamedDependency[Session],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
    name: FromPath[str],
    data: JSONBody[SettingsUpdate],
) -> SettingsView:
    """Set or unset (``null``: back to the installation's value) this organization's
    values of organization-scoped settings, all or nothing."""
    return _apply(request, kernel, db, principal, name, data, current_org)


class OrgPluginSettingsList(msgspec.Struct, kw_only=True):
    #: One view per running plugin that declares ``organization`` settings.
    items: list[SettingsView]


@get(
    f"{API}/orgs/{{org:str}}/plugin-settings",
    operation_id="org_plugin_settings_list",
    tags=["plugins"],
    sync_to_thread=True,
    opt={"permission": "plugin_settings.read"},
)
def org_plugin_settings_list(
    kernel: NamedDependency[Kernel],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> OrgPluginSettingsList:
    """Every running plugin's organization-scoped settings, as this organization gets
    them: what an organization admin may configure (the installation's plugin list is
    for superusers only)."""
    return OrgPluginSettingsList(
        items=service.org_views(kernel, db, org_id=current_org.id, org_slug=current_org.slug)
    )


ROUTES = [
    org_plugin_settings_list,
    plugin_settings_show,
    plugin_settings_update,
    org_plugin_settings_show,
    org_plugin_settings_update,
]
