"""Jobs as a built-in plugin: permissions, events, routes and the kernel's job types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.permissions import Permission, Role, Scope

PERMISSIONS = [
    Permission(
        name="jobs.read",
        description="See jobs, their progress and logs",
        min_role=Role.VIEWER,
        scope=Scope.READ,
    ),
    Permission(
        name="jobs.cancel",
        description="Cancel a queued or running job",
        min_role=Role.DEVELOPER,
        scope=Scope.DEPLOY,
    ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    from gakwaya.jobs.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def register_jobs() -> Sequence[JobType]:
    from gakwaya.jobs.maintenance import JOB_TYPES

    return JOB_TYPES


@hookimpl
def register_routes() -> Sequence[Any]:
    # Imported here: a `gakwaya worker` never builds the app and need not load Litestar.
    from gakwaya.jobs.controllers import ROUTES

    return ROUTES
