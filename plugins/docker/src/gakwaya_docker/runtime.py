"""The ``runtime:docker`` provider: a release's instances as containers on one engine."""

from __future__ import annotations

import contextlib
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.containers import Container

from gakwaya_docker import health, networks
from gakwaya_docker.containers import (
    RESTART_POLICIES,
    container_ip,
    create_kwargs,
    restart_policy,
    to_instance,
)
from gakwaya_docker.engine import Engine, HostFn, first_line
from gakwaya_docker.labels import (
    APP_LABEL,
    KEY_PATTERN,
    MANAGED_LABEL,
    MANAGED_VALUE,
    container_name,
    network_name,
)
from gakwaya_docker.logs import follow as follow_streams, lines, merge_by_time
from gakwaya_docker.stats import to_stats
from gakwaya_sdk.providers import (
    CancelledFn,
    ContainerSpec,
    HealthCheck,
    ImageInfo,
    Instance,
    InstanceStats,
    LogFn,
    ProviderError,
)
from gakwaya_sdk.sources import RuleError, check_image_ref

CAPABILITY = "runtime:docker"
#: Lines of each new instance's output shown to the user when a start fails.
FAILURE_LOG_LINES = 30
#: An instance id or name as the engine makes them; anything else is not one of ours.
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: How often a starting instance's state is looked at (a crash is reported this fast).
STATE_POLL = 0.25

T = TypeVar("T")

#: Seconds between two probes of a starting instance (failures still count once per
#: ``interval``): the time a new release may stand ready before it is seen to be.
FAST_PROBE = 0.05
#: The pace for the first ``EARLY_SECONDS`` of an instance, when most apps come up: a
#: refused connection on a local bridge costs next to nothing.
EARLY_PROBE = 0.02
EARLY_SECONDS = 1.0


def _never() -> bool:
    return False


@dataclass
class _Watch:
    container: Container
    started: float
    next_probe: float
    #: When the engine is next asked for the instance's state.
    next_look: float
    failures: int = 0
    #: When a failed probe was last counted against ``retries``.
    counted_at: float = float("-inf")


class DockerRuntime:
    """Runs containers on the engine named by the ``docker_host`` setting.

    Holds no state but the (lazy) connection: everything it reports is read from the
    engine, so several panel processes may share one engine."""

    capability = CAPABILITY

    def __init__(self, host: HostFn | str = "", network_pool: Callable[[], str] | str = "") -> None:
        self.engine = Engine(host if callable(host) else (lambda: host))
        self._network_pool = network_pool if callable(network_pool) else (lambda: network_pool)
        self._network_lock = threading.Lock()

    # Starting ------------------------------------------------------------------------

    def start(
        self, *, spec: ContainerSpec, log: LogFn, cancelled: CancelledFn = _never
    ) -> list[Instance]:
        _check_spec(spec)
        client = self.engine.client()
        with self.engine.errors(f"image {spec.image}"):
            try:
                image = client.images.get(spec.image)
            except docker.errors.NotFound:
                raise ProviderError(
                    f"image {spec.image} is not on the Docker engine (this runtime never pulls)"
                ) from None
        image_user = str((image.attrs.get("Config") or {}).get("User") or "")
        network_id = self._ensure_network(client, spec.org)
        created: list[Container] = []
        try:
            for _ in range(spec.replicas):
                if cancelled():
                    raise ProviderError("cancelled")
                created.append(self._create(client, spec, str(image.id), network_id, image_user))
            for container in created:
                with self.engine.errors(f"starting {container.name}"):
                    container.start()
            self._wait_healthy(spec, created, cancelled)
            for container in created:
                with self.engine.errors(f"setting the restart policy of {container.name}"):
                    container.update(restart_policy=restart_policy(spec.restart))
            # The state read while waiting says what an Instance holds (running, its
            # address, its start time); the policy just set is not part of it.
            return [to_instance(container.attrs) for container in created]
        except BaseException:
            self._discard(created, log)
            raise

    def _create(
        self,
        client: docker.DockerClient,
        spec: ContainerSpec,
        image_id: str,
        network_id: str,
        image_user: str,
    ) -> Container:
        for attempt in range(3):
            name = container_name(spec.app, spec.release, secrets.token_hex(3))
            kwargs = create_kwargs(spec, name=name, network_id=network_id, image_user=image_user)
            try:
                with self.engine.errors(f"creating container {name}"):
                    return client.containers.create(image_id, **kwargs)
            except ProviderError as exc:
                cause = exc.__cause__
                name_taken = isinstance(cause, docker.errors.APIError) and (
                    cause.status_code == 409
                )
                if not name_taken or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _ensure_network(self, client: docker.DockerClient, org: str) -> str:
        """The organization's network (see :mod:`gakwaya_docker.networks`); creations
        in this process are serialized, so concurrent deploys make it once."""
        pool = networks.parse_pool(_read_setting(self._network_pool, "network_pool"))
        with self._network_lock, self.engine.errors(f"network {network_name(org)}"):
            return networks.ensure(client, org, pool)

    def _wait_healthy(
        self, spec: ContainerSpec, containers: list[Container], cancelled: CancelledFn
    ) -> None:
        check = spec.health or HealthCheck(kind="none")
        kind = check.kind if spec.port is not None else "none"
        interval = max(check.interval, 0.0)
        retries = max(check.retries, 1)
        # Probes are cheap (a connection on a local bridge) and decide how soon a new
        # release serves; looking at the state is an engine request, made less often.
        pace = min(FAST_PROBE, interval) if interval > 0 else FAST_PROBE
        early = min(EARLY_PROBE, pace)
        if kind == "none":
            pace = early = min(STATE_POLL, interval) if interval > 0 else FAST_PROBE
        now = time.monotonic()
        pending = {c.id: _Watch(c, started=now, next_probe=now, next_look=now) for c in containers}
        while pending:
            if cancelled():
                raise ProviderError("cancelled")
            for key, watch in list(pending.items()):
                container = watch.container
                if time.monotonic() >= watch.next_look:
                    self._look(container)
                    watch.next_look = time.monotonic() + STATE_POLL
                now = time.monotonic()
                if kind == "none":
                    if now - watch.started >= interval:
                        self._look(container)
                        del pending[key]
                    continue
                if now < watch.next_probe:
                    continue
                ip = container_ip(container.attrs, spec.org)
                reason = (
                    health.probe(kind, ip, spec.port or 0, check.path, check.timeout)
                    if ip
                    else "no address on the organization's network"
                )
                if reason is None:
                    del pending[key]
                    continue
                # Probe often (an app is usually up well before one interval), but count
                # at most one failure per interval: the budget stays retries * interval.
                if now - watch.counted_at >= interval:
                    watch.failures += 1
                    watch.counted_at = now
                if watch.failures >= retries:
                    # One last look: a crash explains a failed probe better.
                    self._look(container)
                    raise ProviderError(
                        f"{container.name}: health check failed {watch.failures} times: {reason}"
                    )
                young = time.monotonic() - watch.started < EARLY_SECONDS
                watch.next_probe = time.monotonic() + (early if young else pace)
            if pending:
                young = any(time.monotonic() - w.started < EARLY_SECONDS for w in pending.values())
                time.sleep(early if young else pace)

    def _look(self, container: Container) -> None:
        """Read the container's state again; raise if it is no longer running."""
        with self.engine.errors(f"inspecting {container.name}"):
            container.reload()
        _fail_if_not_running(container)

    def _discard(self, containers: list[Container], log: LogFn) -> None:
        """Show what the new instances printed, then remove them: a failed start
        leaves nothing behind. Never raises: the original failure is what matters."""
        for container in containers:
            try:
                output = container.logs(stdout=True, stderr=True, tail=FAILURE_LOG_LINES)
                last = list(lines([output]))
                if last:
                    log(f"last output of {container.name}:")
                for line in last:
                    log(f"{container.name}: {line}")
            except Exception:  # noqa: S112 - the log is a courtesy
                continue
        for container in containers:
            try:
                with contextlib.suppress(docker.errors.NotFound):  # gone already
                    container.remove(force=True, v=True)
            except Exception as exc:
                with contextlib.suppress(Exception):  # the log is a courtesy
                    log(f"could not remove {container.name}: {exc}")

    # Lifecycle -----------------------------------------------------------------------

    def remove(self, *, instance_ids: Sequence[str], drain_seconds: float = 0) -> None:
        client = self.engine.client()
        grace = max(0, math.ceil(drain_seconds))

        def remove_one(container: Container) -> None:
            with (
                self.engine.errors(f"removing {container.name}"),
                contextlib.suppress(docker.errors.NotFound),  # gone already
            ):
                if container.status in ("running", "restarting", "paused"):
                    container.stop(timeout=grace)
                container.remove(force=True, v=True)

        self._each(self._managed(client, instance_ids), remove_one)

    def stop(self, *, instance_ids: Sequence[str], timeout: float = 10) -> None:
        client = self.engine.client()
        grace = max(0, math.ceil(timeout))

        def stop_one(container: Container) -> None:
            with (
                self.engine.errors(f"stopping {container.name}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                container.stop(timeout=grace)

        self._each(self._managed(client, instance_ids), stop_one)

    def resume(self, *, instance_ids: Sequence[str]) -> None:
        client = self.engine.client()

        def start_one(container: Container) -> None:
            with (
                self.engine.errors(f"starting {container.name}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                container.start()

        self._each(self._managed(client, instance_ids), start_one)

    def restart(self, *, instance_ids: Sequence[str], timeout: float = 10) -> None:
        client = self.engine.client()
        grace = max(0, math.ceil(timeout))

        def restart_one(container: Container) -> None:
            with (
                self.engine.errors(f"restarting {container.name}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                container.restart(timeout=grace)

        self._each(self._managed(client, instance_ids), restart_one)

    # Reading -------------------------------------------------------------------------

    def instances(self, *, app: str | None = None) -> list[Instance]:
        if app is not None and not KEY_PATTERN.fullmatch(app):
            return []
        client = self.engine.client()
        wanted = [f"{MANAGED_LABEL}={MANAGED_VALUE}"]
        if app is not None:
            wanted.append(f"{APP_LABEL}={app}")
        found: list[Instance] = []
        with self.engine.errors("listing instances"):
            summaries = client.api.containers(all=True, filters={"label": wanted})
            for summary in summaries:
                try:
                    found.append(to_instance(client.api.inspect_container(summary["Id"])))
                except docker.errors.NotFound:
                    continue  # removed meanwhile
        return found

    def logs(
        self, *, instance_ids: Sequence[str], tail: int = 100, follow: bool = False
    ) -> Iterator[str]:
        client = self.engine.client()
        containers = self._managed(client, instance_ids)
        if not containers:
            return iter(())
        several = len(containers) > 1
        tail_arg: int | str = tail if tail >= 0 else "all"

        def prefix(container: Container) -> str:
            return f"{container.name}: " if several else ""

        if not follow:
            sources: list[tuple[str, list[str]]] = []
            for container in containers:
                with self.engine.errors(f"reading the output of {container.name}"):
                    try:
                        raw = container.logs(
                            stdout=True, stderr=True, timestamps=True, tail=tail_arg
                        )
                    except docker.errors.NotFound:
                        continue
                sources.append((prefix(container), list(lines([raw]))))
            return iter(merge_by_time(sources))
        streaming = self.engine.streaming_client()
        streams: list[tuple[str, Any]] = []
        try:
            for container in containers:
                with self.engine.errors(f"reading the output of {container.name}"):
                    stream = streaming.api.logs(
                        container.id,
                        stdout=True,
                        stderr=True,
                        stream=True,
                        follow=True,
                        tail=tail_arg,
                    )
                streams.append((prefix(container), stream))
        except BaseException:
            for _, stream in streams:
                stream.close()
            streaming.close()
            raise
        return follow_streams(streams, on_close=streaming.close)

    def stats(self, *, instance_ids: Sequence[str]) -> list[InstanceStats]:
        client = self.engine.client()
        running = [c for c in self._managed(client, instance_ids) if c.status == "running"]

        def sample(container: Container) -> InstanceStats | None:
            with self.engine.errors(f"reading the statistics of {container.name}"):
                try:
                    # Not one-shot: the engine waits for a second sample so the CPU
                    # share can be computed, as `docker stats --no-stream` does.
                    raw = container.stats(stream=False)
                except docker.errors.NotFound:
                    return None
            return to_stats(str(container.id), str(container.name), raw)

        return [s for s in self._each(running, sample) if s is not None]

    def images(self, *, tag_prefix: str) -> list[ImageInfo]:
        if not tag_prefix:
            # Every image of the engine is never what a caller means.
            raise ProviderError("images: tag_prefix must not be empty")
        client = self.engine.client()
        with self.engine.errors("listing images"):
            # Compared here, not with the engine's "reference" filter: that one is a
            # glob (the prefix would need escaping) and hides an image's other tags.
            summaries = client.api.images()
        found: list[ImageInfo] = []
        for s in summaries:
            tags = [t for t in s.get("RepoTags") or () if t != "<none>:<none>"]
            if not any(t.startswith(tag_prefix) for t in tags):
                continue
            created = datetime.fromtimestamp(s["Created"], UTC) if s.get("Created") else None
            found.append(
                ImageInfo(
                    id=str(s["Id"]),
                    tags=tags,
                    labels=dict(s.get("Labels") or {}),
                    created_at=created,
                )
            )
        return found

    def prepare_image(self, *, image: str, log: LogFn, cancelled: CancelledFn = _never) -> str:
        try:
            check_image_ref(image)
        except RuleError as exc:
            raise ProviderError(f"image: {exc}") from None
        client = self.engine.client()
        local = self._image_id(client, image)
        if local is not None and not names_registry(image):
            log(f"using the engine's copy of {image} ({local[:19]})")
            return local
        if cancelled():
            raise ProviderError("cancelled")
        log(f"pulling {image}")
        try:
            repository, tag = split_reference(image)
            for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
                if cancelled():
                    raise ProviderError("cancelled")
                if isinstance(event, dict) and event.get("error"):
                    raise docker.errors.APIError(str(event["error"]))
        except docker.errors.APIError as exc:
            reason = first_line(exc.explanation or exc)
            if local is not None:
                log(f"pulling {image} failed ({reason}); using the engine's copy")
                return local
            raise ProviderError(f"cannot pull {image}: {reason}") from None
        except docker.errors.DockerException as exc:
            raise ProviderError(f"cannot pull {image}: {first_line(exc)}") from None
        pulled = self._image_id(client, image)
        if pulled is None:
            raise ProviderError(f"{image} was pulled but the engine does not list it")
        log(f"pulled {image} ({pulled[:19]})")
        return pulled

    def _image_id(self, client: docker.DockerClient, image: str) -> str | None:
        with self.engine.errors(f"inspecting image {image}"):
            try:
                return str(client.api.inspect_image(image)["Id"])
            except docker.errors.NotFound:
                return None

    def remove_image(self, *, image: str) -> None:
        client = self.engine.client()
        with self.engine.errors(f"removing image {image}"):
            try:
                info = client.api.inspect_image(image)
            except docker.errors.NotFound:
                return
            image_id = info["Id"]
            tags = info.get("RepoTags") or []
            by_name = image in tags
            # Any container, even a stopped one, keeps its image: an app stopped by
            # its owner must start again.
            if (not by_name or len(tags) == 1) and any(
                c.get("ImageID") == image_id for c in client.api.containers(all=True)
            ):
                return
            try:
                if by_name:
                    # Only this name. Identical builds (other deployments, apps, or
                    # installations sharing the engine) are one image under several
                    # names, each removed by its owner; the engine removes the image
                    # with its last name, and refuses while a container uses it.
                    client.api.remove_image(image)
                else:
                    client.api.remove_image(image_id, force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # in use (a container or a child image) meanwhile
                    return
                raise

    # Helpers -------------------------------------------------------------------------

    def _managed(self, client: docker.DockerClient, ids: Sequence[str]) -> list[Container]:
        """The containers of ``ids`` that exist and carry our label; others are ignored
        (already gone, or never ours to touch)."""
        found: list[Container] = []
        for instance_id in dict.fromkeys(ids):
            if not INSTANCE_ID.fullmatch(instance_id):
                continue
            with self.engine.errors(f"looking up instance {instance_id}"):
                try:
                    container = client.containers.get(instance_id)
                except docker.errors.NotFound:
                    continue
            if (container.labels or {}).get(MANAGED_LABEL) == MANAGED_VALUE:
                found.append(container)
        return found

    @staticmethod
    def _each(containers: list[Container], action: Callable[[Container], T]) -> list[T]:
        """``action`` on every container at once (a drain period is waited once, not
        once per instance); the first failure is raised after all have run."""
        if not containers:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            futures = [pool.submit(action, c) for c in containers]
        results: list[T] = []
        for future in futures:
            results.append(future.result())
        return results


def _read_setting(value: Callable[[], str], name: str) -> str:
    try:
        return str(value() or "")
    except Exception as exc:
        raise ProviderError(f"cannot read the {name} setting: {exc}") from exc


def _fail_if_not_running(container: Container) -> None:
    state = container.attrs.get("State") or {}
    code = state.get("ExitCode")
    oom = " (out of memory)" if state.get("OOMKilled") else ""
    if state.get("Restarting") or int(container.attrs.get("RestartCount") or 0) > 0:
        raise ProviderError(f"{container.name} restarted after it exited with code {code}{oom}")
    if not state.get("Running"):
        raise ProviderError(f"{container.name} exited with code {code}{oom}")


def _check_spec(spec: ContainerSpec) -> None:
    """The kernel validated all of this; checked again because a bad value here would
    reach the engine as a name or a limit."""
    for field in ("app", "org", "release"):
        if not KEY_PATTERN.fullmatch(getattr(spec, field)):
            raise ProviderError(f"{field} {getattr(spec, field)!r} is not a valid key")
    if spec.replicas < 1:
        raise ProviderError("replicas must be at least 1")
    if spec.restart not in RESTART_POLICIES:
        raise ProviderError(f"restart must be one of {', '.join(RESTART_POLICIES)}")
    if spec.port is not None and not 1 <= spec.port <= 65535:
        raise ProviderError("port must be between 1 and 65535")
    if spec.memory_mb is not None and spec.memory_mb < 6:
        raise ProviderError("memory_mb must be at least 6 (the engine's minimum)")
    if spec.cpu is not None and not spec.cpu > 0:
        raise ProviderError("cpu must be greater than 0")
    if spec.health is not None:
        if spec.health.kind not in health.KINDS:
            raise ProviderError(f"health check kind must be one of {', '.join(health.KINDS)}")
        path = spec.health.path
        if not path.startswith("/") or any(ch.isspace() or ord(ch) < 32 for ch in path):
            raise ProviderError("health check path must start with / and contain no spaces")


def names_registry(image: str) -> bool:
    """Whether the reference names its registry (``registry.example.com/web:1``,
    ``localhost:5000/web``): then a deployment pulls it even when the engine has a copy,
    so a moved tag is picked up. A Docker Hub short name (``nginx:1.25``) is pulled only
    when missing."""
    first, slash, _rest = image.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def split_reference(image: str) -> tuple[str, str | None]:
    """``repository`` and ``tag`` (or ``None``, or the digest) for the engine's pull API."""
    if "@" in image:
        repository, _, digest = image.partition("@")
        return repository, digest
    head, _, last = image.rpartition("/")
    if ":" in last:
        name, _, tag = last.partition(":")
        return (f"{head}/{name}" if head else name), tag
    return image, "latest"
