"""How a release's container is configured, and how one is described back.

Everything a container may do is decided here, in one place, so the security
properties in the README can be read off the code:

- no published ports, no mounts or volumes, one network (the organization's);
- never privileged; every capability dropped, then only ``NET_BIND_SERVICE`` (and,
  for an image that explicitly asks to run as root, the three it needs to drop to
  another user: ``CHOWN``, ``SETUID``, ``SETGID``); ``no-new-privileges``;
- the image's ``USER`` when it declares one, else ``nobody`` (65534:65534): an
  image that needs root must say ``USER root``;
- an init process (``--init``) so signals reach the app and ``docker stop`` is quick;
- memory (and memory+swap, so no swap), CPU and process-count limits;
- rotated json-file logs, so a chatty app cannot fill the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gakwaya_docker.labels import (
    APP_LABEL,
    MANAGED_LABEL,
    MANAGED_VALUE,
    ORG_LABEL,
    PORT_LABEL,
    RELEASE_LABEL,
    network_name,
)
from gakwaya_sdk.providers import ContainerSpec, Instance

RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
#: ``nobody:nogroup`` on Debian and Alpine alike, and owning nothing in the image.
NOBODY = "65534:65534"
CAPABILITIES = ("NET_BIND_SERVICE",)
#: Added only when the image declares ``USER root``: what a server started as root
#: needs to hand its files and itself to an unprivileged user (nginx, apache).
ROOT_CAPABILITIES = ("CHOWN", "SETUID", "SETGID")
#: Processes and threads per container: room for a worker pool, not a fork bomb.
PIDS_LIMIT = 1024
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}}


def run_user(image_user: str) -> str:
    """The user a container of an image runs as: the image's, else ``nobody``."""
    return image_user.strip() or NOBODY


def runs_as_root(user: str) -> bool:
    return user.split(":", 1)[0] in ("root", "0")


def managed_labels(spec: ContainerSpec) -> dict[str, str]:
    labels = dict(spec.labels)
    labels.update(
        {
            MANAGED_LABEL: MANAGED_VALUE,
            APP_LABEL: spec.app,
            ORG_LABEL: spec.org,
            RELEASE_LABEL: spec.release,
        }
    )
    if spec.port is not None:
        labels[PORT_LABEL] = str(spec.port)
    return labels


def create_kwargs(
    spec: ContainerSpec, *, name: str, network_id: str, image_user: str
) -> dict[str, Any]:
    """Arguments of ``client.containers.create`` for one instance of ``spec``.

    The restart policy starts as ``no``: while the health check runs, a crash must
    leave the container exited with its code (a restarting container has already
    forgotten it); :meth:`DockerRuntime.start` sets ``spec.restart`` once healthy."""
    user = run_user(image_user)
    env = dict(spec.env)
    if spec.port is not None:
        env.setdefault("PORT", str(spec.port))
    caps = list(CAPABILITIES)
    if runs_as_root(user):
        caps.extend(ROOT_CAPABILITIES)
    kwargs: dict[str, Any] = {
        "name": name,
        "detach": True,
        "environment": env,
        "labels": managed_labels(spec),
        "network": network_id,
        "user": user,
        "init": True,
        "privileged": False,
        "cap_drop": ["ALL"],
        "cap_add": caps,
        "security_opt": ["no-new-privileges"],
        "pids_limit": PIDS_LIMIT,
        "restart_policy": {"Name": "no"},
        "log_config": LOG_CONFIG,
    }
    if spec.memory_mb is not None:
        kwargs["mem_limit"] = f"{spec.memory_mb}m"
        kwargs["memswap_limit"] = f"{spec.memory_mb}m"
    if spec.cpu is not None:
        kwargs["nano_cpus"] = round(spec.cpu * 1_000_000_000)
    return kwargs


def restart_policy(name: str) -> dict[str, Any]:
    if name == "on-failure":
        return {"Name": name, "MaximumRetryCount": 0}
    return {"Name": name}


def container_ip(attrs: Mapping[str, Any], org: str) -> str:
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    settings = networks.get(network_name(org)) or {}
    return str(settings.get("IPAddress") or "")


def address(attrs: Mapping[str, Any]) -> str:
    """``ip:port`` on the organization's network while the container has an address."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    port = labels.get(PORT_LABEL, "")
    ip = container_ip(attrs, labels.get(ORG_LABEL, ""))
    return f"{ip}:{port}" if ip and port else ""


def parse_time(value: str | None) -> datetime | None:
    """The engine's RFC 3339 times (nanoseconds, ``Z``), or None for the zero time."""
    if not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    head, sep, rest = text.partition(".")
    if sep:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def to_instance(attrs: Mapping[str, Any]) -> Instance:
    """An :class:`Instance` from ``docker inspect`` output."""
    labels = dict((attrs.get("Config") or {}).get("Labels") or {})
    state = attrs.get("State") or {}
    status = str(state.get("Status") or "")
    exit_code = state.get("ExitCode")
    return Instance(
        id=str(attrs["Id"]),
        name=str(attrs.get("Name") or "").lstrip("/"),
        app=labels.get(APP_LABEL, ""),
        release=labels.get(RELEASE_LABEL, ""),
        state=status,
        address=address(attrs) if status in ("running", "paused") else "",
        started_at=parse_time(state.get("StartedAt")),
        labels=labels,
        exit_code=int(exit_code)
        if status in ("exited", "dead") and exit_code is not None
        else None,
    )
