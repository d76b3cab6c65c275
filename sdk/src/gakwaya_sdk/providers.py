"""Provider protocols: the capabilities a plugin can supply to the kernel.

A provider is an object a plugin returns from ``register_providers``. Its
``capability`` is ``kind:name`` (``runtime:docker``, ``proxy:caddy``,
``git:github``), and the plugin's manifest must list it under ``provides``:
the host refuses a provider whose capability the manifest does not declare, or
whose object lacks a method of its kind's protocol. The kernel then finds it
with ``Panel.provider("runtime:docker")`` or ``Panel.providers("notifier")``.

The kinds and their protocols:

============  =========================  ==========================================
kind          protocol                   what it does
============  =========================  ==========================================
``git``       :class:`SourceProvider`    fetches an app's source at a commit
``builder``   :class:`Builder`           turns a source tree into an image
``runtime``   :class:`Runtime`           runs, lists and stops an app's containers
``proxy``     :class:`Proxy`             routes domains to running instances
``certs``     :class:`CertificateIssuer` obtains and renews TLS certificates
``database``  :class:`DatabaseProvider`  creates managed databases, dumps/restores
``backup``    :class:`BackupTarget`      stores backup files (disk, S3, …)
``logs``      :class:`LogSink`           receives application and panel log lines
``metrics``   :class:`MetricsSource`     samples CPU, memory and network use
``notifier``  :class:`Notifier`          sends alerts (email, Slack, webhook, …)
``billing``   :class:`BillingMeter`      measures usage for hourly billing
============  =========================  ==========================================

Methods are synchronous: the kernel calls them from jobs, never on the event
loop. Every value that reaches a process, a path or a remote API arrives already
validated by the kernel, but a provider still passes arguments as lists (never a
shell string) and confines paths to the directory it was given. A method that
fails raises :class:`ProviderError` with a message fit for the user; any other
exception is reported as the plugin's failure (the plugin is marked degraded).

These protocols are versioned with :data:`gakwaya_sdk.CORE_API_VERSION`; while it
is ``0.x`` they may grow as the pipeline issues land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Any, Protocol, runtime_checkable

import msgspec

#: Every provider kind the kernel knows, with its protocol (filled in below).
KINDS: dict[str, type] = {}

#: A line of output for the user (build log, deploy log); the kernel stores and streams it.
LogFn = Callable[[str], None]


class ProviderError(Exception):
    """The provider could not do what was asked; the message is shown to the user."""


@runtime_checkable
class Provider(Protocol):
    #: ``kind:name``; the kind is one of :data:`KINDS`.
    capability: str


# Source ------------------------------------------------------------------------------


class SourceSpec(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    #: Branch, tag or full commit id.
    ref: str = ""
    #: Credentials the kernel decrypted for this fetch (deploy key, token); never log them.
    credentials: Mapping[str, str] = msgspec.field(default_factory=dict)


class SourceRevision(msgspec.Struct, frozen=True, kw_only=True):
    commit: str
    message: str = ""
    author: str = ""


@runtime_checkable
class SourceProvider(Protocol):
    capability: str

    def fetch(self, *, spec: SourceSpec, dest: str, log: LogFn) -> SourceRevision:
        """Put the tree at ``spec.ref`` into the empty directory ``dest``."""

    def resolve(self, *, spec: SourceSpec) -> str:
        """The full commit id ``spec.ref`` points at now (to detect new commits)."""


# Builder -----------------------------------------------------------------------------


class BuildRequest(msgspec.Struct, frozen=True, kw_only=True):
    #: Directory holding the source (already confined to the app's subdirectory).
    context_dir: str
    #: The image reference to produce, e.g. ``gakwaya/acme-web:r42``.
    image: str
    #: Path of the Dockerfile relative to ``context_dir`` (Dockerfile builders).
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = msgspec.field(default_factory=dict)
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)


class BuildResult(msgspec.Struct, frozen=True, kw_only=True):
    image: str
    #: Content digest of the image (``sha256:…``): releases refer to it.
    digest: str


@runtime_checkable
class Builder(Protocol):
    capability: str

    def detect(self, *, context_dir: str) -> bool:
        """Whether this builder can build the tree (the first builder that says yes wins)."""

    def build(self, *, request: BuildRequest, log: LogFn) -> BuildResult:
        """Build the image; stream progress to ``log``; raise ProviderError on failure."""


# Runtime -----------------------------------------------------------------------------


class HealthCheck(msgspec.Struct, frozen=True, kw_only=True):
    #: ``http`` (GET ``path`` answers 2xx/3xx) or ``tcp`` (the port accepts).
    kind: str = "tcp"
    path: str = "/"
    interval: float = 5.0
    timeout: float = 3.0
    retries: int = 3


class ContainerSpec(msgspec.Struct, frozen=True, kw_only=True):
    #: Stable key of the app (``<org>-<project>-<env>-<app>``), a valid container name part.
    app: str
    release: str
    image: str
    port: int | None = None
    replicas: int = 1
    env: Mapping[str, str] = msgspec.field(default_factory=dict)
    cpu: float | None = None
    memory_mb: int | None = None
    health: HealthCheck | None = None
    restart: str = "unless-stopped"
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)


class Instance(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    app: str
    release: str
    #: ``running``, ``starting``, ``unhealthy``, ``exited``…
    state: str
    #: ``host:port`` the proxy can reach, when it listens.
    address: str = ""
    started_at: datetime | None = None


@runtime_checkable
class Runtime(Protocol):
    capability: str

    def start(self, *, spec: ContainerSpec, log: LogFn) -> list[Instance]:
        """Start ``spec.replicas`` new instances of a release beside any running ones,
        and return them once they pass their health check (else raise ProviderError
        and leave nothing of the new release running)."""

    def stop(self, *, app: str, release: str | None = None) -> None:
        """Stop and remove the app's instances (only ``release``'s when given)."""

    def instances(self, *, app: str | None = None) -> list[Instance]:
        """What runs now (every app's when ``app`` is None): the reconciler's view."""

    def logs(
        self, *, app: str, since: datetime | None = None, follow: bool = False
    ) -> Iterator[str]:
        """The app's output lines."""


# Proxy and certificates --------------------------------------------------------------


class Route(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    #: ``host:port`` of each healthy instance.
    upstreams: Sequence[str]
    app: str
    #: Serve HTTPS (and redirect HTTP) for this domain.
    tls: bool = True


@runtime_checkable
class Proxy(Protocol):
    capability: str

    def apply(self, *, routes: Sequence[Route]) -> None:
        """Make the proxy serve exactly ``routes`` (the whole desired set), atomically:
        on failure the previous configuration keeps serving."""

    def routes(self) -> list[Route]:
        """What the proxy serves now (the reconciler compares it with the desired set)."""


class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    domains: Sequence[str]
    not_after: datetime
    issuer: str = ""


@runtime_checkable
class CertificateIssuer(Protocol):
    capability: str

    def issue(self, *, domains: Sequence[str], log: LogFn) -> Certificate:
        """Obtain (or renew) a certificate for ``domains``."""

    def status(self, *, domain: str) -> Certificate | None:
        """The certificate currently held for ``domain``, if any."""


# Databases and backups ---------------------------------------------------------------


class DatabaseSpec(msgspec.Struct, frozen=True, kw_only=True):
    #: Stable key, a valid container/volume name part.
    name: str
    engine: str
    version: str = ""
    #: Decrypted by the kernel; never log it.
    password: str = ""
    memory_mb: int | None = None


class DatabaseInstance(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    engine: str
    host: str
    port: int
    #: Internal connection URL without the password.
    url: str = ""


@runtime_checkable
class DatabaseProvider(Protocol):
    capability: str

    def create(self, *, spec: DatabaseSpec, log: LogFn) -> DatabaseInstance:
        """Create (or adopt an existing) database server for ``spec``."""

    def delete(self, *, name: str, keep_data: bool = False) -> None:
        """Remove the server, and its data unless ``keep_data``."""

    def dump(self, *, spec: DatabaseSpec, out: IO[bytes]) -> None:
        """Write a consistent logical dump; raise ProviderError if it is incomplete."""

    def restore(self, *, spec: DatabaseSpec, source: IO[bytes], log: LogFn) -> None:
        """Load a dump made by :meth:`dump`."""


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    size: int
    modified_at: datetime


@runtime_checkable
class BackupTarget(Protocol):
    capability: str

    def put(self, *, key: str, source: IO[bytes], settings: Mapping[str, Any]) -> int:
        """Store ``source`` under ``key`` (a relative path the kernel validated);
        return the bytes stored. Verify what was written: a silent short write is
        the failure this protocol exists to prevent."""

    def get(self, *, key: str, out: IO[bytes], settings: Mapping[str, Any]) -> None:
        """Copy the object stored under ``key`` into ``out``."""

    def list(self, *, prefix: str, settings: Mapping[str, Any]) -> list[StoredObject]:
        """Objects under ``prefix``, for retention and restore pickers."""

    def delete(self, *, key: str, settings: Mapping[str, Any]) -> None:
        """Remove one object (retention)."""


# Observability, alerts, billing ------------------------------------------------------


class LogRecord(msgspec.Struct, frozen=True, kw_only=True):
    time: datetime
    source: str
    line: str
    org_id: int | None = None
    app: str = ""


@runtime_checkable
class LogSink(Protocol):
    capability: str

    def write(self, *, records: Sequence[LogRecord]) -> None:
        """Accept a batch of lines (called from a background job, at least once)."""


class MetricSample(msgspec.Struct, frozen=True, kw_only=True):
    time: datetime
    target: str
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None


@runtime_checkable
class MetricsSource(Protocol):
    capability: str

    def sample(self, *, targets: Sequence[str]) -> list[MetricSample]:
        """One sample per target (an instance id) that still exists."""


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    body: str
    #: ``info``, ``warning`` or ``critical``.
    severity: str = "info"
    org_id: int | None = None
    link: str = ""


@runtime_checkable
class Notifier(Protocol):
    capability: str

    def send(self, *, notification: Notification, settings: Mapping[str, Any]) -> None:
        """Deliver it, with the organization's channel settings; raise ProviderError
        when the channel refused it (the kernel records and retries)."""


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    org_id: int
    #: What was used, e.g. ``app.hours``, ``memory.gb_hours``.
    metric: str
    quantity: float
    start: datetime
    end: datetime
    subject: str = ""


@runtime_checkable
class BillingMeter(Protocol):
    capability: str

    def usage(self, *, org_id: int, start: datetime, end: datetime) -> list[UsageRecord]:
        """Usage in ``[start, end)``; called hourly, and again for a period that failed."""


KINDS.update(
    {
        "git": SourceProvider,
        "builder": Builder,
        "runtime": Runtime,
        "proxy": Proxy,
        "certs": CertificateIssuer,
        "database": DatabaseProvider,
        "backup": BackupTarget,
        "logs": LogSink,
        "metrics": MetricsSource,
        "notifier": Notifier,
        "billing": BillingMeter,
    }
)


def check_provider(provider: object, provides: Sequence[str]) -> str:
    """Why ``provider`` cannot be registered for a plugin providing ``provides``, or ""."""
    capability = getattr(provider, "capability", None)
    if not isinstance(capability, str) or ":" not in capability:
        return "has no 'capability' attribute of the form 'kind:name'"
    kind = capability.split(":", 1)[0]
    protocol = KINDS.get(kind)
    if protocol is None:
        return f"capability {capability!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})"
    if capability not in provides:
        return f"capability {capability!r} is not listed in the manifest's 'provides'"
    if not isinstance(provider, protocol):
        missing = [
            name
            for name in dir(protocol)
            if not name.startswith("_") and name != "capability" and not hasattr(provider, name)
        ]
        return f"capability {capability!r}: missing {', '.join(missing)} of {protocol.__name__}"
    return ""
