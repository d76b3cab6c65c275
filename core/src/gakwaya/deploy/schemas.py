"""Request and response bodies of projects, environments, apps and their variables.

Values that reach git, a path or Docker carry the patterns of
:mod:`gakwaya_sdk.sources` so the schema documents them; the services check them
again with the ``check_*`` functions, which also say what a pattern cannot (``..``
segments, ``ext::`` transports). Secrets (git credentials, secret variable values)
appear only in request bodies, never in a view.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from gakwaya_sdk.sources import (
    ENV_VALUE_RULE,
    GIT_REF_PATTERN,
    GIT_REF_RULE,
    GIT_URL_RULE,
    IMAGE_REF_PATTERN,
    IMAGE_REF_RULE,
    RELATIVE_PATH_RULE,
)
from gakwaya_sdk.types import Slug, register_rule

DESCRIPTION_PATTERN = r"^[^\x00-\x1f\x7f]{0,500}$(?!\n)"
DESCRIPTION_RULE = "at most 500 characters, no control characters (newlines, tabs)"
HEALTH_PATH_PATTERN = r"^/[A-Za-z0-9._~/%?=-]{0,254}$(?!\n)"
HEALTH_PATH_RULE = (
    "a URL path starting with '/': letters, digits and . _ ~ / % ? = -, at most 255 characters"
)
register_rule(DESCRIPTION_PATTERN, DESCRIPTION_RULE)
register_rule(HEALTH_PATH_PATTERN, HEALTH_PATH_RULE)
register_rule(GIT_REF_PATTERN, GIT_REF_RULE)
register_rule(IMAGE_REF_PATTERN, IMAGE_REF_RULE)

Description = Annotated[
    str, msgspec.Meta(pattern=DESCRIPTION_PATTERN, description=DESCRIPTION_RULE)
]
# git_url, subdirectory, dockerfile and image: checked (length included) by the services
# with the check_* functions, so every refusal quotes the same rule.
GitUrl = Annotated[str, msgspec.Meta(description=GIT_URL_RULE)]
GitRef = Annotated[str, msgspec.Meta(pattern=GIT_REF_PATTERN, description=GIT_REF_RULE)]
RelativePath = Annotated[str, msgspec.Meta(description=f"empty or {RELATIVE_PATH_RULE}")]
DockerfilePath = Annotated[str, msgspec.Meta(description=RELATIVE_PATH_RULE)]
ImageRef = Annotated[str, msgspec.Meta(description=IMAGE_REF_RULE)]
AppPort = Annotated[int, msgspec.Meta(ge=1, le=65535, description="a TCP port, 1 to 65535")]
# The upper bound is the ``app_max_replicas`` setting, checked by the services.
Replicas = Annotated[
    int, msgspec.Meta(ge=0, description="0 to the app_max_replicas setting (default 10)")
]
Cpu = Annotated[float, msgspec.Meta(ge=0.05, le=64, description="CPU cores, 0.05 to 64")]
MemoryMb = Annotated[int, msgspec.Meta(ge=32, le=262144, description="MiB, 32 to 262144")]
HealthPath = Annotated[str, msgspec.Meta(pattern=HEALTH_PATH_PATTERN, description=HEALTH_PATH_RULE)]
Interval = Annotated[float, msgspec.Meta(ge=0.5, le=300, description="seconds, 0.5 to 300")]
Timeout = Annotated[float, msgspec.Meta(ge=0.5, le=60, description="seconds, 0.5 to 60")]
Retries = Annotated[int, msgspec.Meta(ge=1, le=100, description="1 to 100")]


def _one_of(*choices: str) -> object:
    """A string that must be one of ``choices``, refused with a rule that lists them
    (msgspec's own message for a Literal does not)."""
    pattern = "^(?:" + "|".join(re.escape(c) for c in choices) + ")$(?!\\n)"
    rule = "one of " + ", ".join(choices)
    register_rule(pattern, rule)
    return msgspec.Meta(pattern=pattern, description=rule)


SOURCE_TYPES = ("git", "image")
HEALTH_KINDS = ("http", "tcp", "none")
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
SourceType = Annotated[str, _one_of(*SOURCE_TYPES)]
HealthKind = Annotated[str, _one_of(*HEALTH_KINDS)]
RestartPolicy = Annotated[str, _one_of(*RESTART_POLICIES)]
# Checked by the service, so that a bad value is named ``vars.<KEY>`` like a bad key.
EnvValue = Annotated[str, msgspec.Meta(description=ENV_VALUE_RULE)]


# Projects and environments ------------------------------------------------------------


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Slug
    description: Description = ""


class ProjectUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    description: Description


class ProjectView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    description: str
    #: Names of its environments, oldest first (``production`` is made with the project).
    environments: list[str]
    created_at: dt.datetime


class EnvironmentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Slug


class EnvironmentView(msgspec.Struct, kw_only=True):
    id: int
    project: str
    name: str
    created_at: dt.datetime


# Apps ------------------------------------------------------------------------------------


class GitCredentials(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Write-only: an SSH private key (for ssh:// and scp-style URLs) or an HTTPS
    token with an optional user name (for https:// URLs). Never returned."""

    ssh_private_key: str | None = None
    https_token: str | None = None
    https_username: str | None = None


class HealthCheck(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: http: GET ``path`` answers below 400; tcp: the port accepts; none: no check.
    kind: HealthKind = "tcp"
    path: HealthPath = "/"
    interval: Interval = 2.0
    timeout: Timeout = 3.0
    retries: Retries = 15


class HealthUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: HealthKind | UnsetType = UNSET
    path: HealthPath | UnsetType = UNSET
    interval: Interval | UnsetType = UNSET
    timeout: Timeout | UnsetType = UNSET
    retries: Retries | UnsetType = UNSET


class AppCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project: Slug
    environment: Slug
    name: Slug
    source_type: SourceType = "git"
    git_url: GitUrl = ""
    git_ref: GitRef = "main"
    subdirectory: RelativePath = ""
    dockerfile: DockerfilePath = "Dockerfile"
    image: ImageRef = ""
    port: AppPort = 8000
    replicas: Replicas = 1
    cpu: Cpu | None = None
    memory_mb: MemoryMb | None = None
    health: HealthCheck = msgspec.field(default_factory=HealthCheck)
    restart_policy: RestartPolicy = "unless-stopped"
    git_credentials: GitCredentials | None = None


class AppUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields present change. ``cpu``/``memory_mb`` null: no limit;
    ``git_credentials`` null: remove them."""

    name: Slug | UnsetType = UNSET
    source_type: SourceType | UnsetType = UNSET
    git_url: GitUrl | UnsetType = UNSET
    git_ref: GitRef | UnsetType = UNSET
    subdirectory: RelativePath | UnsetType = UNSET
    dockerfile: DockerfilePath | UnsetType = UNSET
    image: ImageRef | UnsetType = UNSET
    port: AppPort | UnsetType = UNSET
    replicas: Replicas | UnsetType = UNSET
    cpu: Cpu | UnsetType | None = UNSET
    memory_mb: MemoryMb | UnsetType | None = UNSET
    health: HealthUpdate | UnsetType = UNSET
    restart_policy: RestartPolicy | UnsetType = UNSET
    git_credentials: GitCredentials | UnsetType | None = UNSET


class AppView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    project: str
    environment: str
    project_id: int
    environment_id: int
    #: The name the pipeline gives the app's containers and images (``a12``).
    key: str
    source_type: str
    git_url: str
    git_ref: str
    subdirectory: str
    dockerfile: str
    image: str
    has_git_credentials: bool
    port: int
    replicas: int
    cpu: float | None
    memory_mb: int | None
    health: HealthCheck
    restart_policy: str
    #: "running" or "stopped": what was asked for.
    desired_state: str
    current_release_id: int | None
    #: Where the port proxy serves the app on the panel's host.
    host_port: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


# Environment variables -----------------------------------------------------------------


class EnvVarSet(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    value: EnvValue
    #: True: never shown again. Absent: keep the variable's current flag (false if new).
    secret: bool | None = None


class EnvSet(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Set (or, with ``null``, unset) several variables at once: all or nothing."""

    vars: dict[str, EnvVarSet | None]
    #: Queue a deployment of the app with the new variables.
    redeploy: bool = False


class EnvVarView(msgspec.Struct, kw_only=True):
    key: str
    secret: bool
    #: The value, for a variable that is not secret; null for a secret one.
    value: str | None
    updated_at: dt.datetime


class EnvList(msgspec.Struct, kw_only=True):
    #: Every variable of the app, sorted by key.
    items: list[EnvVarView]
    #: The deployment queued by ``redeploy``, if asked for.
    deployment_id: int | None = None
