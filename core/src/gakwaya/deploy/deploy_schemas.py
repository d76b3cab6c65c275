"""API shapes of deployments, releases, instances and stats."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from gakwaya_sdk.sources import GIT_REF_PATTERN, GIT_REF_RULE


class DeploymentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: Branch, tag or commit to deploy this time (default: the app's ``git_ref``).
    ref: Annotated[str, msgspec.Meta(pattern=GIT_REF_PATTERN, description=GIT_REF_RULE)] | None = (
        None
    )


class DeploymentOut(msgspec.Struct, kw_only=True):
    id: int
    app_id: int
    number: int
    kind: str
    state: str
    ref: str
    commit: str
    release_id: int | None
    rollback_release_id: int | None
    job_id: str | None
    trigger: str
    created_by: str
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class DeploymentDetail(DeploymentOut, kw_only=True):
    #: Every stored log line of the deployment, oldest first (secrets scrubbed).
    logs: list[str]


class ReleaseOut(msgspec.Struct, kw_only=True):
    id: int
    app_id: int
    number: int
    image: str
    image_id: str
    commit: str
    #: Port, replicas, limits, health check and restart policy it runs with.
    config: dict[str, Any]
    #: Names of the variables it runs with (values are never returned).
    env_keys: list[str]
    deployment_id: int | None
    current: bool
    created_at: dt.datetime


class ScaleRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    replicas: Annotated[int, msgspec.Meta(ge=0, le=10, description="number of instances, 0 to 10")]


class InstanceOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    release: str
    state: str
    address: str
    exit_code: int | None
    started_at: dt.datetime | None


class AppStatus(msgspec.Struct, kw_only=True):
    app_id: int
    desired_state: str
    replicas: int
    current_release_id: int | None
    instances: list[InstanceOut]


class InstanceStatsOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    block_read_bytes: int
    block_write_bytes: int


class LogLines(msgspec.Struct, kw_only=True):
    lines: list[str]
