"""Projects, environments, apps, their variables, deployments and releases.

Desired state lives here (ARCHITECTURE §4): what an app should run (its current
release, replicas, ``desired_state``), while the runtime only holds what runs now.
The reconciler converges the second to the first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gakwaya.db.base import Base, UTCDateTime, utcnow


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("environment_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    # Source: "git" (git_url at git_ref, built) or "image" (image, run as is).
    source_type: Mapped[str] = mapped_column(String(16), default="git")
    git_url: Mapped[str] = mapped_column(String(500), default="")
    git_ref: Mapped[str] = mapped_column(String(200), default="main")
    subdirectory: Mapped[str] = mapped_column(String(255), default="")
    dockerfile: Mapped[str] = mapped_column(String(255), default="Dockerfile")
    image: Mapped[str] = mapped_column(String(255), default="")
    # Fernet-encrypted JSON: {"ssh_private_key": …} or {"https_token": …, "https_username": …}.
    git_credentials: Mapped[str | None] = mapped_column(Text, default=None)
    port: Mapped[int] = mapped_column(Integer, default=8000)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    cpu: Mapped[float | None] = mapped_column(Float, default=None)
    memory_mb: Mapped[int | None] = mapped_column(Integer, default=None)
    health_kind: Mapped[str] = mapped_column(String(8), default="tcp")
    health_path: Mapped[str] = mapped_column(String(255), default="/")
    health_interval: Mapped[float] = mapped_column(Float, default=2.0)
    health_timeout: Mapped[float] = mapped_column(Float, default=3.0)
    health_retries: Mapped[int] = mapped_column(Integer, default=15)
    restart_policy: Mapped[str] = mapped_column(String(16), default="unless-stopped")
    # "running" or "stopped": what the owner asked for; the reconciler enforces it.
    desired_state: Mapped[str] = mapped_column(String(16), default="running")
    # The release that serves (None before the first successful deployment).
    current_release_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # Stable host port the port proxy serves the app on (until domains route it).
    host_port: Mapped[int | None] = mapped_column(Integer, unique=True, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AppEnvVar(Base):
    __tablename__ = "app_env_vars"
    __table_args__ = (UniqueConstraint("app_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(128))
    # Always encrypted, secret or not; a secret one is never returned after it is set.
    ciphertext: Mapped[str] = mapped_column(Text)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Release(Base):
    """Immutable: an image id, the configuration it ran with and its commit."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    image: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(100))
    commit: Mapped[str] = mapped_column(String(64), default="")
    # Non-secret configuration snapshot: port, replicas, limits, health, restart.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet-encrypted JSON of the variables: {key: [value, secret]}.
    env_ciphertext: Mapped[str] = mapped_column(Text)
    deployment_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("app_id", "number"),
        Index("ix_deployments_app_state", "app_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # "build" (fetch + build + release), "image" (pull-free run of an image reference)
    # or "rollback" (an earlier release, no build).
    kind: Mapped[str] = mapped_column(String(16), default="build")
    # queued, running, succeeded, failed, cancelled, superseded
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    # The release this deployment made (or, for a rollback, redeployed).
    release_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # For a rollback: the release asked for.
    rollback_release_id: Mapped[int | None] = mapped_column(Integer, default=None)
    ref: Mapped[str] = mapped_column(String(200), default="")
    commit: Mapped[str] = mapped_column(String(64), default="")
    trigger: Mapped[str] = mapped_column(String(16), default="api")
    created_by: Mapped[str] = mapped_column(String(300), default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
