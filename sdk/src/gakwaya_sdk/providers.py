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
``dns``       :class:`DnsProvider`       solves ACME DNS-01 challenges (wildcards)
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

#: Polled by long provider operations; True means "stop now and clean up" (a cancelled
#: deployment, a job past its time limit). Providers check it between steps and lines.
CancelledFn = Callable[[], bool]


def _never() -> bool:
    return False


class SourceSpec(msgspec.Struct, frozen=True, kw_only=True):
    #: Already checked with :func:`gakwaya_sdk.sources.check_git_url`.
    url: str
    #: Branch, tag or full commit id (:func:`gakwaya_sdk.sources.check_git_ref`).
    ref: str = ""
    #: Secrets the kernel decrypted for this fetch; never log them. Keys:
    #: ``ssh_private_key`` (an OpenSSH private key, for ``ssh://`` and scp-style URLs),
    #: ``https_token`` and optional ``https_username`` (for ``https://`` URLs).
    credentials: Mapping[str, str] = msgspec.field(default_factory=dict)


class SourceRevision(msgspec.Struct, frozen=True, kw_only=True):
    #: Full commit id of the tree that was fetched.
    commit: str
    message: str = ""
    author: str = ""


@runtime_checkable
class SourceProvider(Protocol):
    capability: str

    def accepts(self, *, url: str) -> bool:
        """Whether this provider fetches ``url`` (the generic git provider takes all;
        a GitHub provider may take only its host). The first that says yes wins."""

    def fetch(
        self, *, spec: SourceSpec, dest: str, log: LogFn, cancelled: CancelledFn = _never
    ) -> SourceRevision:
        """Put the tree at ``spec.ref`` into the empty directory ``dest`` (shallow where
        the server allows). Raise ProviderError with a message free of credentials.

        The deploy log already says what is fetched (URL and ref) before the call and
        the commit it got after: ``log`` is for what only the provider knows (its
        transport's output, a fallback it took), scrubbed of credentials."""

    def resolve(self, *, spec: SourceSpec) -> str:
        """The full commit id ``spec.ref`` points at now (to detect new commits)."""


# Builder -----------------------------------------------------------------------------


class SourceTree(msgspec.Struct, frozen=True, kw_only=True):
    """What ``builder_for_source`` looks at to pick a builder."""

    #: Directory holding the source (already confined to the app's subdirectory).
    context_dir: str
    #: The Dockerfile path the app configured, relative to ``context_dir``.
    dockerfile: str = "Dockerfile"


class BuildRequest(msgspec.Struct, frozen=True, kw_only=True):
    #: Directory holding the source (already confined to the app's subdirectory);
    #: the builder may write into it (it is a throwaway checkout).
    context_dir: str
    #: The image reference to produce, e.g. ``gakwaya/a12:d7``.
    image: str
    #: Path of the Dockerfile relative to ``context_dir`` (Dockerfile builders),
    #: already confined to the checkout.
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: Labels to put on the image (each costs a build step with a Dockerfile builder;
    #: the kernel sends none: it finds its images by the ``image`` name).
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: The organization the build is for (a builder's per-organization settings).
    org_id: int | None = None


class BuildResult(msgspec.Struct, frozen=True, kw_only=True):
    image: str
    #: The engine's immutable id of the image (``sha256:…``): releases refer to it, so
    #: a rollback runs exactly the bytes that were built, whatever the tag says now.
    digest: str


@runtime_checkable
class Builder(Protocol):
    capability: str

    def build(
        self, *, request: BuildRequest, log: LogFn, cancelled: CancelledFn = _never
    ) -> BuildResult:
        """Build the image, streaming each output line to ``log`` as it comes and
        reusing the layer cache. On failure or cancellation raise ProviderError and
        leave no image or build container behind."""


# Runtime -----------------------------------------------------------------------------


class HealthCheck(msgspec.Struct, frozen=True, kw_only=True):
    #: ``http`` (GET ``path`` answers 2xx/3xx), ``tcp`` (the port accepts) or ``none``
    #: (running for ``interval`` seconds is enough).
    kind: str = "tcp"
    path: str = "/"
    #: Seconds between attempts.
    interval: float = 2.0
    #: Seconds one attempt may take.
    timeout: float = 3.0
    #: Failed attempts before the instance is declared unhealthy.
    retries: int = 15


class ContainerSpec(msgspec.Struct, frozen=True, kw_only=True):
    #: Stable key of the app (``a12``): a valid container-name part, put in the
    #: ``gakwaya.app`` label. Instances of one app are found by it.
    app: str
    #: Key of the app's organization (``o3``): its containers share one network,
    #: ``gakwaya-<org>``, and no other organization's.
    org: str
    #: Key of the release (``r7``), in the ``gakwaya.release`` label.
    release: str
    #: Image id or reference to run.
    image: str
    #: Port the app listens on inside the container (also given as ``PORT``).
    port: int | None = None
    replicas: int = 1
    env: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: CPU limit in cores (0.5 = half a core).
    cpu: float | None = None
    memory_mb: int | None = None
    health: HealthCheck | None = None
    #: ``no``, ``on-failure``, ``always`` or ``unless-stopped``.
    restart: str = "unless-stopped"
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)


class Instance(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    app: str
    release: str
    #: ``created``, ``running``, ``restarting``, ``paused``, ``exited``, ``dead``.
    state: str
    #: ``host:port`` of the app's port, reachable from the panel's host (proxies
    #: forward here), when it listens.
    address: str = ""
    started_at: datetime | None = None
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: Exit code when ``state`` is ``exited``.
    exit_code: int | None = None


class InstanceStats(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    block_read_bytes: int
    block_write_bytes: int


class ImageInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tags: Sequence[str] = ()
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    created_at: datetime | None = None


@runtime_checkable
class Runtime(Protocol):
    capability: str

    def start(
        self, *, spec: ContainerSpec, log: LogFn, cancelled: CancelledFn = _never
    ) -> list[Instance]:
        """Start ``spec.replicas`` new instances of a release beside any running ones,
        unprivileged, in the organization's network, with the limits, and return them
        once each passes ``spec.health``. On failure (exit, health never passing,
        cancellation) log the instances' last output lines, remove every instance
        this call created, and raise ProviderError: the running ones are untouched."""

    def prepare_image(self, *, image: str, log: LogFn, cancelled: CancelledFn = _never) -> str:
        """Make the prebuilt ``image`` reference (already checked with
        :func:`gakwaya_sdk.sources.check_image_ref`) available to the engine and return
        its immutable id, which the release records: pulled from its registry when the
        reference names one (``registry.example.com/team/web:1``) or when the engine
        does not have it; else the engine's own copy. Raise ProviderError when it can be
        neither pulled nor found."""

    def remove(self, *, instance_ids: Sequence[str], drain_seconds: float = 0) -> None:
        """Stop (SIGTERM, then SIGKILL after ``drain_seconds``) and delete instances."""

    def stop(self, *, instance_ids: Sequence[str], timeout: float = 10) -> None:
        """Stop instances without deleting them (an app stopped by its owner)."""

    def resume(self, *, instance_ids: Sequence[str]) -> None:
        """Start stopped instances again."""

    def restart(self, *, instance_ids: Sequence[str], timeout: float = 10) -> None:
        """Restart instances in place."""

    def instances(self, *, app: str | None = None) -> list[Instance]:
        """Every instance this runtime manages (of ``app`` when given), running or not:
        the reconciler compares them with the desired state."""

    def logs(
        self, *, instance_ids: Sequence[str], tail: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """Output lines of the instances, oldest first; with ``follow``, new lines as they
        come until the caller closes the iterator."""

    def stats(self, *, instance_ids: Sequence[str]) -> list[InstanceStats]:
        """One current sample per running instance."""

    def images(self, *, tag_prefix: str) -> list[ImageInfo]:
        """Images with a tag (``repository:tag``) starting with ``tag_prefix``, each with
        all its tags: the kernel's image garbage collection. The kernel names every
        image it builds ``gakwaya/<installation>-a<app>:d<deployment>`` and finds them
        by that name (``gakwaya/<installation>-a``, ``gakwaya/<installation>-a12:``),
        not by labels: a label on an image is one more build step."""

    def remove_image(self, *, image: str) -> None:
        """Delete an image name: given a tag, only that tag (the image goes with its
        last one: identical builds share one image under several names); given an id,
        the image and all its tags. An image still used by an instance is left alone."""


# Proxy and certificates --------------------------------------------------------------


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a proxy serves: a domain (HTTP proxies) or a host port (port
    forwarders) in front of an app's healthy instances. The kernel sends the whole
    desired set on every change; each proxy keeps the routes it can serve."""

    #: Key of the app the route serves (``a12``), or ``panel`` for the panel itself.
    app: str
    #: ``host:port`` of each healthy instance.
    upstreams: Sequence[str]
    #: Domain served (HTTP proxies), IDNA ASCII form, lower case; a leading ``*.``
    #: only when a ``dns`` provider can solve DNS-01 for it. Empty for a port route.
    domain: str = ""
    #: Host port served (port-forwarding proxies); None for a domain-only route.
    port: int | None = None
    #: Serve HTTPS for ``domain`` with a certificate the proxy obtains and renews.
    tls: bool = True
    #: Answer plain HTTP for ``domain`` with a permanent redirect to HTTPS (with ``tls``);
    #: when False, plain HTTP is proxied too.
    https_redirect: bool = True
    #: Other host names answered with a permanent redirect to ``domain`` (www ↔ apex).
    redirect_from: Sequence[str] = ()
    #: Path the proxy's active health check requests on each upstream (any status below
    #: 400 is healthy); None: only failed connections take an upstream out.
    health_path: str | None = None
    #: Seconds between two active checks, and before one times out.
    health_interval: float = 5.0
    health_timeout: float = 2.0
    #: Largest request body accepted, in bytes (larger ones get 413); None: no limit.
    max_body_bytes: int | None = None
    #: Seconds an upstream has to send its response headers (then 504); None: the
    #: proxy's default.
    timeout: float | None = None


@runtime_checkable
class Proxy(Protocol):
    capability: str

    def apply(self, *, routes: Sequence[Route]) -> None:
        """Make the proxy serve exactly ``routes`` (the whole desired set; a proxy
        ignores the routes it cannot serve, e.g. a port forwarder those without a
        ``port``), atomically: on failure (ProviderError naming the proxy's reason) the
        previous configuration keeps serving."""

    def routes(self) -> list[Route]:
        """What the proxy serves now, limited to the kinds of route it serves (a port
        forwarder: port routes; an HTTP proxy: domain routes): the reconciler compares
        it with the desired routes of that kind and applies again when they differ."""


def routes_key(routes: Sequence[Route]) -> list[str]:
    """Routes as the kernel compares them: whole (every field), whatever the order of
    the routes, of their upstreams and of their redirect names. A proxy's ``routes()``
    gives back what ``apply`` was given, under this key."""
    return sorted(
        msgspec.json.encode(
            msgspec.structs.replace(
                r, upstreams=sorted(r.upstreams), redirect_from=sorted(r.redirect_from)
            )
        ).decode()
        for r in routes
    )


@runtime_checkable
class ManagedProxy(Protocol):
    """Optional, for a proxy the panel can run itself (``gakwaya proxy start``): a
    proxy provider that also has these methods is one."""

    def start(self, *, log: LogFn) -> None:
        """Start the proxy process when it is not running (detached: it outlives the
        caller, and comes back with its last configuration), then return once it
        answers; raise ProviderError naming why it could not start."""

    def stop(self) -> None:
        """Stop the process :meth:`start` started (nothing when none runs)."""

    def state(self) -> Mapping[str, Any]:
        """What an operator needs to see: at least ``running`` (bool) and ``admin``
        (the address the panel drives it at)."""


class CertificateStatus(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    #: ``pending`` (not obtained yet, or being obtained), ``issued`` or ``failed``.
    state: str
    #: Expiry of the certificate served now (``issued``; may also be set while a
    #: renewal is ``failed``).
    not_after: datetime | None = None
    #: Issuer's distinguished name (``CN=Pebble Intermediate CA ...``).
    issuer: str = ""
    #: Why the last attempt failed, in the CA's or the proxy's words (``failed``).
    reason: str = ""


@runtime_checkable
class CertificateIssuer(Protocol):
    """Certificates of the domains routed with ``tls``. Issuance and renewal are the
    provider's own (an HTTP proxy's ACME client); the kernel asks for their state to
    show it and to raise events on failure and near expiry."""

    capability: str

    def status(self, *, domains: Sequence[str]) -> list[CertificateStatus]:
        """The state of each of ``domains`` (one entry each, in order)."""


@runtime_checkable
class DnsProvider(Protocol):
    """Solves ACME DNS-01 challenges for a DNS host (the only way to a wildcard
    certificate). Its presence allows wildcard domains (``*.example.com``)."""

    capability: str

    def acme_dns_challenge(self, *, domain: str) -> Mapping[str, Any]:
        """The DNS-01 challenge configuration for ``domain`` in the certificate issuer's
        form (for the Caddy issuer: the ``challenges.dns`` object of its ACME issuer,
        e.g. ``{"provider": {"name": "cloudflare", "api_token": "..."}}``), or raise
        ProviderError when ``domain`` is not in a zone it manages."""


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
        "dns": DnsProvider,
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
