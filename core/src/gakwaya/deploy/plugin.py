"""Apps and the deploy pipeline as a built-in plugin: permissions, events, routes, jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.permissions import Permission, Role, Scope
from gakwaya_sdk.services import Service


def _p(name: str, description: str, role: Role, scope: Scope) -> Permission:
    return Permission(name=name, description=description, min_role=role, scope=scope)


PERMISSIONS = [
    _p("projects.read", "See projects and environments", Role.VIEWER, Scope.READ),
    _p(
        "projects.write",
        "Create, rename and delete projects and environments",
        Role.DEVELOPER,
        Scope.WRITE,
    ),
    _p("apps.read", "See apps, their settings, instances, logs and stats", Role.VIEWER, Scope.READ),
    _p("apps.write", "Create apps and change their settings", Role.DEVELOPER, Scope.WRITE),
    _p("apps.delete", "Delete apps and everything they run", Role.ADMIN, Scope.ADMIN),
    _p("apps.lifecycle", "Start, stop, restart and scale apps", Role.DEVELOPER, Scope.DEPLOY),
    _p(
        "env.read",
        "See environment variables (secret values are never shown)",
        Role.VIEWER,
        Scope.READ,
    ),
    _p("env.write", "Set and unset environment variables", Role.DEVELOPER, Scope.WRITE),
    _p("deployments.read", "See deployments, their logs and the queue", Role.VIEWER, Scope.READ),
    _p(
        "deployments.create",
        "Deploy apps and roll back to earlier releases",
        Role.DEVELOPER,
        Scope.DEPLOY,
    ),
    _p("deployments.cancel", "Cancel queued or running deployments", Role.DEVELOPER, Scope.DEPLOY),
    _p("releases.read", "See releases", Role.VIEWER, Scope.READ),
]


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return PERMISSIONS


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    from gakwaya.deploy.events import EVENT_TYPES

    return EVENT_TYPES


@hookimpl
def register_jobs() -> Sequence[JobType]:
    from gakwaya.deploy.jobs import JOB_TYPES

    return JOB_TYPES


@hookimpl
def register_routes() -> Sequence[Any]:
    from gakwaya.deploy.controllers import ROUTES

    return ROUTES


@hookimpl
def register_services(panel: Any) -> Sequence[Service]:
    # A built-in plugin is kernel code: it may reach the kernel behind the panel.
    from gakwaya.deploy.reconciler import ReconcilerService

    return [ReconcilerService(panel._kernel)]
