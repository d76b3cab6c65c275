"""The pipeline's view of its providers: which runtime, source, builder and proxies to
use, what a release runs as (:class:`ContainerSpec`), and the routes every proxy must
serve.

Routes are level-triggered: each change computes the whole desired set from the
database and the runtime and applies it to every proxy, under one lock, so two
deployments finishing together cannot apply stale sets over each other.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from gakwaya.db.models import App, Release
from gakwaya.deploy import keys
from gakwaya.deploy.envvars import app_env
from gakwaya.errors import Conflict
from gakwaya.jobs.context import Scrubber
from gakwaya_sdk.providers import (
    Builder,
    ContainerSpec,
    HealthCheck,
    Instance,
    ProviderError,
    Proxy,
    Route,
    Runtime,
    SourceProvider,
    SourceTree,
)

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel
    from gakwaya.security.crypto import SecretBox

#: PostgreSQL advisory lock key held while routes are computed and applied.
ROUTES_LOCK_KEY = 0x6761_6B77  # "gakw"
_routes_lock = threading.Lock()


class MissingProvider(Conflict):
    """No active plugin provides what the pipeline needs."""


def runtime(kernel: Kernel) -> Runtime:
    found = list(kernel.plugins.providers("runtime").values())
    if not found:
        raise MissingProvider("no runtime plugin is active (install and enable gakwaya-docker)")
    return found[0]  # type: ignore[no-any-return]


def source_for(kernel: Kernel, url: str) -> SourceProvider:
    for provider in kernel.plugins.providers("git").values():
        if provider.accepts(url=url):
            return provider  # type: ignore[no-any-return]
    raise MissingProvider("no git source plugin accepts this URL (install gakwaya-git)")


def builder_for(kernel: Kernel, tree: SourceTree) -> Builder:
    capability = kernel.plugins.first_result("builder_for_source", source=tree)
    if not capability:
        raise MissingProvider(
            f"no builder can build this source: no {tree.dockerfile} found, and no other "
            "builder plugin recognised it"
        )
    builder = kernel.plugins.provider(str(capability))
    if builder is None:
        raise MissingProvider(f"builder {capability} was chosen but is not active")
    return builder  # type: ignore[no-any-return]


def proxies(kernel: Kernel) -> list[Proxy]:
    return list(kernel.plugins.providers("proxy").values())


#: Proxies that forward host ports; every other proxy serves domains.
PORT_PROXIES = frozenset({"proxy:ports"})


def serves(proxy: Proxy, route: Route) -> bool:
    """Whether ``proxy`` serves this kind of route: its ``routes()`` lists only those,
    so the reconciler compares it with the desired routes this keeps."""
    if proxy.capability in PORT_PROXIES:
        return route.port is not None
    return bool(route.domain)


# Configuration snapshots ---------------------------------------------------------------


def config_of(app: App) -> dict[str, Any]:
    """The non-secret configuration a release keeps (and a rollback restores)."""
    return {
        "port": app.port,
        "replicas": app.replicas,
        "cpu": app.cpu,
        "memory_mb": app.memory_mb,
        "health": {
            "kind": app.health_kind,
            "path": app.health_path,
            "interval": app.health_interval,
            "timeout": app.health_timeout,
            "retries": app.health_retries,
        },
        "restart": app.restart_policy,
    }


def seal_env(box: SecretBox, env: Mapping[str, tuple[str, bool]]) -> str:
    return box.encrypt(json.dumps({k: [v, s] for k, (v, s) in env.items()}))


def open_env(box: SecretBox, ciphertext: str) -> dict[str, tuple[str, bool]]:
    raw = json.loads(box.decrypt(ciphertext))
    return {str(k): (str(v[0]), bool(v[1])) for k, v in raw.items()}


def our_instances(kernel: Kernel, app_id: int | None = None) -> list[Instance]:
    """The runtime's instances of this installation (of one app when given)."""
    inst = kernel.installation_id
    found = runtime(kernel).instances(
        app=keys.app_key(inst, app_id) if app_id is not None else None
    )
    return [i for i in found if i.labels.get(keys.INSTALLATION_LABEL) == inst]


def our_labels(kernel: Kernel) -> dict[str, str]:
    return {keys.MANAGED_LABEL: keys.MANAGED_VALUE, keys.INSTALLATION_LABEL: kernel.installation_id}


def spec_for(
    kernel: Kernel,
    app: App,
    release: Release,
    env: Mapping[str, tuple[str, bool]],
    *,
    replicas: int | None = None,
    deployment_id: int | None = None,
) -> ContainerSpec:
    """What one release runs as: its image and configuration, the app's variables and
    the platform's own (``PORT``, ``GAKWAYA_*``), which a user cannot override."""
    config = release.config
    health = config.get("health") or {}
    variables = {key: value for key, (value, _secret) in env.items()}
    port = int(config.get("port") or app.port)
    variables.update(
        {
            "PORT": str(port),
            "GAKWAYA_APP": app.name,
            "GAKWAYA_APP_ID": str(app.id),
            "GAKWAYA_RELEASE": f"v{release.number}",
            "GAKWAYA_RELEASE_ID": str(release.id),
            "GAKWAYA_COMMIT": release.commit,
        }
    )
    inst = kernel.installation_id
    labels = our_labels(kernel)
    if deployment_id is not None:
        labels[keys.DEPLOYMENT_LABEL] = keys.deployment_key(deployment_id)
    return ContainerSpec(
        app=keys.app_key(inst, app.id),
        org=keys.org_key(inst, app.org_id),
        release=keys.release_key(release.id),
        image=release.image_id,
        port=port,
        replicas=app.replicas if replicas is None else replicas,
        env=variables,
        cpu=config.get("cpu"),
        memory_mb=config.get("memory_mb"),
        health=HealthCheck(
            kind=str(health.get("kind", "tcp")),
            path=str(health.get("path", "/")),
            interval=float(health.get("interval", 2.0)),
            timeout=float(health.get("timeout", 3.0)),
            retries=int(health.get("retries", 15)),
        ),
        restart=str(config.get("restart") or "unless-stopped"),
        labels=labels,
    )


def log_scrubber(kernel: Kernel, app_id: int) -> Scrubber:
    """Secret values of the app (now and in its current release) and the installation's
    own secrets: what an app printing its environment must not show through us."""
    base = Scrubber.for_kernel(kernel)
    values: list[str] = []
    with kernel.db.session() as db:
        app = db.get(App, app_id)
        if app is not None:
            values += [v for v, secret in app_env(kernel.box, db, app).values() if secret]
        release = (
            db.get(Release, app.current_release_id) if app and app.current_release_id else None
        )
        if release is not None:
            env = open_env(kernel.box, release.env_ciphertext)
            values += [v for v, secret in env.values() if secret]
    return Scrubber([*base.secrets, *values])


# Routes ----------------------------------------------------------------------------------


@contextlib.contextmanager
def routes_lock(kernel: Kernel) -> Iterator[None]:
    """One route change at a time: a PostgreSQL advisory lock across processes, a
    thread lock within one (SQLite installations run their jobs in the panel)."""
    with _routes_lock:
        if kernel.db.is_sqlite:
            yield
            return
        with kernel.db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ROUTES_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ROUTES_LOCK_KEY})
                conn.commit()


def generation(instance: Instance) -> int:
    """The deployment that started an instance (0 when none did: scaled instances
    carry the generation they joined, see :func:`newest_generation`)."""
    label = instance.labels.get(keys.DEPLOYMENT_LABEL, "")
    number = label.removeprefix("d")
    return int(number) if label.startswith("d") and number.isdigit() else 0


def current_generation(instances: Sequence[Instance]) -> list[Instance]:
    """The instances of each app and release started by the newest deployment of that
    release (and those no deployment started). A rollback to the release just
    replaced starts new instances while the previous ones still drain, no longer
    routed: those must not be routed again."""
    newest: dict[tuple[str, str], int] = {}
    for inst in instances:
        group = (inst.app, inst.release)
        newest[group] = max(newest.get(group, 0), generation(inst))
    return [i for i in instances if generation(i) in (0, newest[(i.app, i.release)])]


def newest_generation(instances: Sequence[Instance], release: str) -> int | None:
    """The deployment whose instances of ``release`` serve now (None: none does); new
    instances of a scale-up join it, so they are routed with it."""
    found = [generation(i) for i in instances if i.release == release and generation(i)]
    return max(found) if found else None


def desired_routes(
    kernel: Kernel,
    instances: Sequence[Instance],
    *,
    override: Mapping[str, Sequence[str]] | None = None,
) -> list[Route]:
    """Every route that should be served: each running app's host port, and each of
    its active domains, to the running instances of its current release (``override``
    replaces an app's upstreams); and the panel's own domain when ``panel_domain`` is
    set."""
    from gakwaya.domains.routing import active_domains, domain_routes, panel_route

    override = override or {}
    with kernel.db.transaction(write=False) as db:
        apps = list(
            db.execute(select(App.id, App.host_port, App.current_release_id, App.desired_state))
        )
        domains = active_domains(db)
    by_app: dict[str, list[str]] = {}
    for inst in current_generation(instances):
        if inst.state == "running" and inst.address:
            by_app.setdefault(f"{inst.app}/{inst.release}", []).append(inst.address)
    routes: list[Route] = []
    served: dict[int, tuple[str, list[str]]] = {}
    for app_id, host_port, release_id, desired in apps:
        key = keys.app_key(kernel.installation_id, app_id)
        if key in override:
            upstreams = list(override[key])
        elif desired != "running" or release_id is None:
            upstreams = []
        else:
            upstreams = sorted(by_app.get(f"{key}/{keys.release_key(release_id)}", []))
        if upstreams:
            served[app_id] = (key, upstreams)
            if host_port is not None:
                routes.append(Route(app=key, upstreams=upstreams, port=host_port, tls=False))
    routes += domain_routes(kernel.settings, domains, served)
    panel = panel_route(kernel.settings)
    if panel is not None:
        routes.append(panel)
    return routes


def apply_routes(
    kernel: Kernel, *, override: Mapping[str, Sequence[str]] | None = None
) -> list[Route]:
    """Compute the desired routes and apply them to every proxy; return them. A proxy
    that refuses them (Caddy down) does not keep the others from getting theirs (the
    port proxy): the first refusal is raised once every proxy was tried."""
    with routes_lock(kernel):
        routes = desired_routes(kernel, our_instances(kernel), override=override)
        refused: ProviderError | None = None
        for proxy in proxies(kernel):
            try:
                proxy.apply(routes=routes)
            except ProviderError as exc:
                refused = refused or exc
        if refused is not None:
            raise refused
    return routes
