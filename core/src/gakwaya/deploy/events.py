"""Events of apps and deployments. Identifiers and facts only: never a variable's value."""

from __future__ import annotations

from gakwaya_sdk.events import Event


class AppCreated(Event, tag="app.created"):
    app_id: int
    name: str


class AppUpdated(Event, tag="app.updated"):
    app_id: int
    fields: list[str]


class AppDeleted(Event, tag="app.deleted"):
    app_id: int
    name: str


class AppEnvChanged(Event, tag="app.env_changed"):
    app_id: int
    keys: list[str]


class AppStateChanged(Event, tag="app.state_changed"):
    """Stopped, started, restarted or scaled by a user."""

    app_id: int
    action: str
    replicas: int


class AppCrashed(Event, tag="app.crashed"):
    """The reconciler found an instance of the app dead and restarted it."""

    app_id: int
    instance: str
    exit_code: int | None = None


class AppDrift(Event, tag="app.drift"):
    """The runtime differed from the desired state; ``detail`` says how and what was done."""

    app_id: int | None
    detail: str


class DeploymentQueued(Event, tag="deployment.queued"):
    app_id: int
    deployment_id: int
    number: int
    kind: str


class DeploymentStarted(Event, tag="deployment.started"):
    app_id: int
    deployment_id: int


class DeploymentSucceeded(Event, tag="deployment.succeeded"):
    app_id: int
    deployment_id: int
    release_id: int
    commit: str = ""


class DeploymentFailed(Event, tag="deployment.failed"):
    app_id: int
    deployment_id: int
    error: str


class DeploymentCancelled(Event, tag="deployment.cancelled"):
    app_id: int
    deployment_id: int
    #: "cancelled" (someone asked) or "superseded" (a newer deployment was queued).
    reason: str


EVENT_TYPES: list[type[Event]] = [
    AppCreated,
    AppUpdated,
    AppDeleted,
    AppEnvChanged,
    AppStateChanged,
    AppCrashed,
    AppDrift,
    DeploymentQueued,
    DeploymentStarted,
    DeploymentSucceeded,
    DeploymentFailed,
    DeploymentCancelled,
]
