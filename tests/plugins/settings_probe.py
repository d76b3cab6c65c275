"""A plugin that declares settings and reads them where plugins do: in a route
(``panel`` and ``current_org`` dependencies, typed with the SDK's protocols), in a
job (``ctx.panel``) and in ``on_event`` (``panel``). Imports only the SDK.

Loaded as an object (``Kernel(extra_plugins=[("probe", module)])``) or through
``plugin_modules`` (the CLI tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import get
from litestar.di import NamedDependency

from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import OrgContext, Panel
from gakwaya_sdk.events import Event
from gakwaya_sdk.jobs import JobContext, JobType
from gakwaya_sdk.permissions import Permission, Role, Scope

NAME = "probe"

MANIFEST: dict[str, Any] = {
    "name": NAME,
    "version": "1.0",
    "core_api": ">=0.1,<0.2",
    "permissions": ["probe.read"],
    "settings": [
        {
            "name": "endpoint",
            "default": "https://api.example.com",
            "description": "Where the service answers.",
        },
        {"name": "region", "default": "eu", "scope": "organization"},
        {"name": "token", "secret": True, "scope": "organization", "required": True},
        {"name": "port", "type": "int", "default": 443},
        {"name": "verbose", "type": "bool", "default": False, "scope": "organization"},
        {"name": "tags", "type": "list[str]", "default": []},
        {"name": "ratio", "type": "float", "default": 0.5},
    ],
}

#: What the job and the subscriber read, for the tests to look at.
seen: list[tuple[str, dict[str, Any]]] = []


class Pinged(Event, tag="probe.pinged"):
    pass


def _visible(settings: Any) -> dict[str, Any]:
    return dict(settings)


@get(
    "/api/v1/orgs/{org:str}/probe",
    operation_id="probe_show",
    opt={"permission": "probe.read"},
    sync_to_thread=True,
)
def probe_show(
    panel: NamedDependency[Panel], current_org: NamedDependency[OrgContext]
) -> dict[str, Any]:
    values = panel.settings(NAME, org_id=current_org.id)
    # A real plugin never returns a secret; the test checks the decrypted value arrives.
    return {
        "org": current_org.slug,
        "role": str(current_org.role),
        "core_api": panel.core_api,
        "settings": _visible(values),
    }


def probe_job(ctx: JobContext) -> str:
    values = ctx.panel.settings(NAME, org_id=ctx.org_id)
    seen.append(("job", _visible(values)))
    return str(values["region"])


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return [
        Permission(
            name="probe.read", description="Read the probe", min_role=Role.VIEWER, scope=Scope.READ
        )
    ]


@hookimpl
def register_routes() -> Sequence[Any]:
    return [probe_show]


@hookimpl
def register_jobs() -> Sequence[JobType]:
    return [JobType(name="probe.run", func=probe_job)]


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    return [Pinged]


@hookimpl
def on_event(event: Event, event_id: int, panel: Panel) -> None:
    if isinstance(event, Pinged):
        seen.append(("event", _visible(panel.settings(NAME, org_id=event.org_id))))
