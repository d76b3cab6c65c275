"""Start, stop, restart, scale and tear down an app's instances, in the request.

Each changes the desired state in the database first and then the runtime and the
proxies, so the reconciler converges to what the user asked even when the runtime
step fails half-way. They act on the current release; an app never deployed has
nothing to start (409).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Release
from gakwaya.deploy import keys
from gakwaya.deploy.events import AppStateChanged
from gakwaya.deploy.runtime import (
    apply_routes,
    newest_generation,
    open_env,
    our_instances,
    runtime,
    spec_for,
)
from gakwaya.errors import Conflict, GakwayaError, NotFound
from gakwaya_sdk.providers import Instance, ProviderError

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

#: Seconds a stopping instance gets to exit on SIGTERM before it is killed.
STOP_TIMEOUT = 10


class RuntimeFailed(GakwayaError):
    """The runtime refused; the message is the provider's."""

    status_code = 502
    title = "Runtime error"


def _load(kernel: Kernel, app_id: int) -> tuple[App, Release | None]:
    with kernel.db.transaction(write=False) as db:
        app = db.get(App, app_id)
        if app is None:
            raise NotFound(f"app {app_id} not found in this organization")
        release = db.get(Release, app.current_release_id) if app.current_release_id else None
        db.expunge(app)
        if release is not None:
            db.expunge(release)
    return app, release


def current_instances(kernel: Kernel, app: App) -> list[Instance]:
    return our_instances(kernel, app.id)


def _set(kernel: Kernel, app_id: int, **values: Any) -> None:
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        if app is not None:
            for name, value in values.items():
                setattr(app, name, value)
            app.updated_at = utcnow()


def _require_release(app: App, release: Release | None) -> Release:
    if release is None:
        raise Conflict(f"app {app.name} has no release yet: deploy it first")
    return release


def _publish(kernel: Kernel, app: App, action: str, replicas: int) -> None:
    kernel.events.publish(
        AppStateChanged(org_id=app.org_id, app_id=app.id, action=action, replicas=replicas)
    )


def _runtime_call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ProviderError as exc:
        raise RuntimeFailed(str(exc)) from exc


def stop(kernel: Kernel, app_id: int) -> list[Instance]:
    app, release = _load(kernel, app_id)
    _require_release(app, release)
    _set(kernel, app_id, desired_state="stopped")
    rt = runtime(kernel)
    instances = current_instances(kernel, app)
    _runtime_call(lambda: apply_routes(kernel))
    running = [i.id for i in instances if i.state in ("running", "restarting", "created")]
    _runtime_call(lambda: rt.stop(instance_ids=running, timeout=STOP_TIMEOUT))
    _publish(kernel, app, "stop", 0)
    return current_instances(kernel, app)


def start(kernel: Kernel, app_id: int) -> list[Instance]:
    app, release = _load(kernel, app_id)
    release = _require_release(app, release)
    _set(kernel, app_id, desired_state="running")
    app.desired_state = "running"
    rt = runtime(kernel)
    ours = [i for i in current_instances(kernel, app) if i.release == keys.release_key(release.id)]
    stopped = [i.id for i in ours if i.state not in ("running", "restarting")]
    if stopped:
        _runtime_call(lambda: rt.resume(instance_ids=stopped))
    missing = app.replicas - len(ours)
    if missing > 0:
        _start_more(kernel, app, release, missing)
    _runtime_call(lambda: apply_routes(kernel))
    _publish(kernel, app, "start", app.replicas)
    return current_instances(kernel, app)


def restart(kernel: Kernel, app_id: int) -> list[Instance]:
    app, release = _load(kernel, app_id)
    _require_release(app, release)
    if app.desired_state != "running":
        raise Conflict(f"app {app.name} is stopped: start it instead")
    rt = runtime(kernel)
    ids = [i.id for i in current_instances(kernel, app)]
    _runtime_call(lambda: rt.restart(instance_ids=ids, timeout=STOP_TIMEOUT))
    _runtime_call(lambda: apply_routes(kernel))
    _publish(kernel, app, "restart", app.replicas)
    return current_instances(kernel, app)


def scale(kernel: Kernel, app_id: int, replicas: int) -> list[Instance]:
    app, release = _load(kernel, app_id)
    _set(kernel, app_id, replicas=replicas)
    app.replicas = replicas
    if release is None or app.desired_state != "running":
        _publish(kernel, app, "scale", replicas)
        return current_instances(kernel, app) if release is not None else []
    rt = runtime(kernel)
    ours = [i for i in current_instances(kernel, app) if i.release == keys.release_key(release.id)]
    if len(ours) < replicas:
        _start_more(kernel, app, release, replicas - len(ours))
        _runtime_call(lambda: apply_routes(kernel))
    elif len(ours) > replicas:
        extra = sorted(ours, key=lambda i: i.started_at or utcnow())[replicas:]
        keep = {i.id for i in ours} - {i.id for i in extra}
        # Route away from the extra instances first, then remove them.
        _runtime_call(lambda: _apply_only(kernel, app, [i for i in ours if i.id in keep]))
        _runtime_call(
            lambda: rt.remove(
                instance_ids=[i.id for i in extra],
                drain_seconds=float(kernel.settings.deploy_drain_seconds),
            )
        )
        _runtime_call(lambda: apply_routes(kernel))
    _publish(kernel, app, "scale", replicas)
    return current_instances(kernel, app)


def _apply_only(kernel: Kernel, app: App, keep: list[Instance]) -> None:
    apply_routes(
        kernel,
        override={
            keys.app_key(kernel.installation_id, app.id): [i.address for i in keep if i.address]
        },
    )


def _start_more(kernel: Kernel, app: App, release: Release, count: int) -> None:
    env = open_env(kernel.box, release.env_ciphertext)
    joined = newest_generation(our_instances(kernel, app.id), keys.release_key(release.id))
    spec = spec_for(kernel, app, release, env, replicas=count, deployment_id=joined)
    lines: list[str] = []
    try:
        runtime(kernel).start(spec=spec, log=lines.append)
    except ProviderError as exc:
        raise RuntimeFailed(f"{exc}" + (f" (last output: {lines[-1]})" if lines else "")) from exc


def teardown(kernel: Kernel, *, app_id: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Remove everything a deleted app ran: instances, images, routes."""
    with kernel.db.transaction(write=False) as db:
        if db.get(App, app_id) is not None:
            raise Conflict(f"app {app_id} still exists; delete it before tearing it down")
    rt = runtime(kernel)
    instances = our_instances(kernel, app_id)
    if instances:
        rt.remove(instance_ids=[i.id for i in instances])
    log(f"removed {len(instances)} instance(s)")
    apply_routes(kernel)
    # By name: the same bytes may also be another app's image, under its own name.
    prefix = keys.image_prefix(kernel.installation_id, app_id)
    images = rt.images(tag_prefix=prefix)
    for image in images:
        for tag in image.tags:
            if tag.startswith(prefix):
                rt.remove_image(image=tag)
    log(f"removed {len(images)} image(s)")
    return {"instances": len(instances), "images": len(images)}
