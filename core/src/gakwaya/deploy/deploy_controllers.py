"""Routes: deployments (create, list, show, cancel, live logs), releases (list, show,
rollback) and an app's lifecycle (status, start, stop, restart, scale, logs, stats)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext, Principal, set_audit_target
from gakwaya.db.models import App, Deployment, Release
from gakwaya.deploy import lifecycle, queue
from gakwaya.deploy.deploy_schemas import (
    AppStatus,
    DeploymentCreate,
    DeploymentDetail,
    DeploymentOut,
    InstanceOut,
    InstanceStatsOut,
    LogLines,
    ReleaseOut,
    ScaleRequest,
)
from gakwaya.deploy.runtime import log_scrubber, open_env, our_instances, runtime
from gakwaya.errors import Conflict, FieldError
from gakwaya.jobs.context import Scrubber
from gakwaya.jobs.services import log_after
from gakwaya.kernel import Kernel
from gakwaya.orgs.scoped import get_in_org, in_org
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, next_cursor, parse_cursor
from gakwaya_sdk.providers import Instance, ProviderError

log = logging.getLogger("gakwaya.deploy")

ORG = "/api/v1/orgs/{org:str}"
APP = f"{ORG}/apps/{{app_id:int}}"
DEPLOYMENT = f"{ORG}/deployments/{{deployment_id:int}}"
RELEASE = f"{ORG}/releases/{{release_id:int}}"
DEPLOYMENT_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "superseded")
#: Seconds between two reads of new log lines for a live stream.
STREAM_POLL = 0.5
MAX_TAIL = 5000
#: Log lines read per look by a live stream.
STREAM_BATCH = 500


def _deployment_out(row: Deployment) -> DeploymentOut:
    return DeploymentOut(
        id=row.id,
        app_id=row.app_id,
        number=row.number,
        kind=row.kind,
        state=row.state,
        ref=row.ref,
        commit=row.commit,
        release_id=row.release_id,
        rollback_release_id=row.rollback_release_id,
        job_id=row.job_id,
        trigger=row.trigger,
        created_by=row.created_by,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _detail(db: Session, row: Deployment) -> DeploymentDetail:
    lines = [line for _id, line in log_after(db, row.job_id)]
    return DeploymentDetail(**msgspec.structs.asdict(_deployment_out(row)), logs=lines)


def _release_out(kernel: Kernel, row: Release, current_id: int | None) -> ReleaseOut:
    return ReleaseOut(
        id=row.id,
        app_id=row.app_id,
        number=row.number,
        image=row.image,
        image_id=row.image_id,
        commit=row.commit,
        config=row.config,
        env_keys=sorted(open_env(kernel.box, row.env_ciphertext)),
        deployment_id=row.deployment_id,
        current=row.id == current_id,
        created_at=row.created_at,
    )


def _instance_out(inst: Instance) -> InstanceOut:
    return InstanceOut(
        id=inst.id,
        name=inst.name,
        release=inst.release,
        state=inst.state,
        address=inst.address,
        exit_code=inst.exit_code,
        started_at=inst.started_at,
    )


# Deployments -------------------------------------------------------------------------


@post(
    f"{APP}/deployments",
    operation_id="deployments_create",
    tags=["deployments"],
    sync_to_thread=True,
    status_code=202,
    opt={"permission": "deployments.create"},
)
def deployments_create(
    request: Request[Any, Any, Any],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    principal: NamedDependency[Principal],
    app_id: FromPath[int],
    data: JSONBody[DeploymentCreate | None] = None,
) -> DeploymentOut:
    """Queue a deployment of the app (its git source at ``ref`` or its ``git_ref``, or
    its image). Queued deployments of the app are superseded; one running goes on and
    this one starts when it ends. Follow it with ``deployments_show`` or the live
    ``deployments_logs`` stream."""
    app = get_in_org(db, App, app_id, current_org.id, what="app")
    ref = data.ref if data is not None and data.ref else ""
    deployment = queue.request_deploy(
        db, kernel, app, trigger="api", created_by=principal.label, ref=ref
    )
    out = _deployment_out(deployment)
    db.commit()  # the job is enqueued once this commit is done
    set_audit_target(request, "deployment", out.id, app_id=app.id)
    return out


@get(
    f"{APP}/deployments",
    operation_id="deployments_list",
    tags=["deployments"],
    sync_to_thread=True,
    opt={"permission": "deployments.read"},
)
def deployments_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
    deployment_state: Annotated[
        str | None,
        QueryParameter(name="state", description=", ".join(DEPLOYMENT_STATES)),
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[DeploymentOut]:
    """The app's deployments, newest first: the queue is the ``queued`` and ``running``
    ones (filter with ``state``)."""
    get_in_org(db, App, app_id, current_org.id, what="app")
    if deployment_state is not None and deployment_state not in DEPLOYMENT_STATES:
        raise FieldError("state", f"one of {', '.join(DEPLOYMENT_STATES)}")
    query = in_org(Deployment, current_org.id).where(Deployment.app_id == app_id)
    if deployment_state is not None:
        query = query.where(Deployment.state == deployment_state)
    last = parse_cursor(cursor)
    if last is not None:
        query = query.where(Deployment.id < last)
    rows = list(db.scalars(query.order_by(Deployment.id.desc()).limit(limit + 1)))
    return Page(
        items=[_deployment_out(r) for r in rows[:limit]],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@get(
    DEPLOYMENT,
    operation_id="deployments_show",
    tags=["deployments"],
    sync_to_thread=True,
    opt={"permission": "deployments.read"},
)
def deployments_show(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    deployment_id: FromPath[int],
) -> DeploymentDetail:
    """A deployment with its full log (build output included, secrets scrubbed)."""
    row = get_in_org(db, Deployment, deployment_id, current_org.id, what="deployment")
    return _detail(db, row)


@post(
    f"{DEPLOYMENT}/cancel",
    operation_id="deployments_cancel",
    tags=["deployments"],
    sync_to_thread=True,
    status_code=200,
    opt={"permission": "deployments.cancel"},
)
def deployments_cancel(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    principal: NamedDependency[Principal],
    deployment_id: FromPath[int],
) -> DeploymentOut:
    """Cancel a queued or running deployment. A queued one ends ``cancelled`` at once;
    a running one stops at its next step, removes what it created and ends
    ``cancelled`` (poll it). The previous release keeps serving. 409 once it ended."""
    set_audit_target(request, "deployment", deployment_id)
    with kernel.db.session() as db:
        get_in_org(db, Deployment, deployment_id, current_org.id, what="deployment")
    queue.cancel(kernel, deployment_id, by=principal.label)
    with kernel.db.session() as db:
        return _deployment_out(
            get_in_org(db, Deployment, deployment_id, current_org.id, what="deployment")
        )


@get(
    f"{DEPLOYMENT}/logs",
    operation_id="deployments_logs",
    tags=["deployments"],
    opt={"permission": "deployments.read"},
    media_type="text/event-stream",
)
async def deployments_logs(
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    deployment_id: FromPath[int],
) -> ServerSentEvent:
    """The deployment's log as Server-Sent Events: every stored line (``event: log``,
    ``id`` = the line's id), then new lines as they are written, then one
    ``event: end`` whose data is the final state, and the stream closes."""
    await anyio.to_thread.run_sync(_check_deployment, kernel, current_org.id, deployment_id)
    return ServerSentEvent(_log_stream(kernel, current_org.id, deployment_id))


def _check_deployment(kernel: Kernel, org_id: int, deployment_id: int) -> None:
    with kernel.db.session() as db:
        get_in_org(db, Deployment, deployment_id, org_id, what="deployment")


def _log_batch(
    kernel: Kernel, org_id: int, deployment_id: int, after: int
) -> tuple[list[tuple[int, str]], str]:
    with kernel.db.session() as db:
        row = get_in_org(db, Deployment, deployment_id, org_id, what="deployment")
        lines = log_after(db, row.job_id, after, limit=STREAM_BATCH)
        return lines, row.state


async def _log_stream(
    kernel: Kernel, org_id: int, deployment_id: int
) -> AsyncIterator[ServerSentEventMessage]:
    last = 0
    while True:
        lines, state = await anyio.to_thread.run_sync(
            _log_batch, kernel, org_id, deployment_id, last
        )
        for line_id, line in lines:
            yield ServerSentEventMessage(id=line_id, event="log", data=line)
            last = line_id
        if len(lines) == STREAM_BATCH:
            continue
        if state in queue.FINISHED_STATES:
            yield ServerSentEventMessage(event="end", data=state)
            return
        await asyncio.sleep(STREAM_POLL)


# Releases ------------------------------------------------------------------------------


@get(
    f"{APP}/releases",
    operation_id="releases_list",
    tags=["releases"],
    sync_to_thread=True,
    opt={"permission": "releases.read"},
)
def releases_list(
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[ReleaseOut]:
    """The app's releases, newest first; ``current`` marks the one serving."""
    app = get_in_org(db, App, app_id, current_org.id, what="app")
    query = in_org(Release, current_org.id).where(Release.app_id == app_id)
    last = parse_cursor(cursor)
    if last is not None:
        query = query.where(Release.id < last)
    rows = list(db.scalars(query.order_by(Release.id.desc()).limit(limit + 1)))
    return Page(
        items=[_release_out(kernel, r, app.current_release_id) for r in rows[:limit]],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@get(
    RELEASE,
    operation_id="releases_show",
    tags=["releases"],
    sync_to_thread=True,
    opt={"permission": "releases.read"},
)
def releases_show(
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    release_id: FromPath[int],
) -> ReleaseOut:
    """A release: its image, commit, configuration and the names of its variables."""
    row = get_in_org(db, Release, release_id, current_org.id, what="release")
    app = db.get(App, row.app_id)
    return _release_out(kernel, row, app.current_release_id if app is not None else None)


@post(
    f"{RELEASE}/rollback",
    operation_id="releases_rollback",
    tags=["releases"],
    sync_to_thread=True,
    status_code=202,
    opt={"permission": "deployments.create"},
)
def releases_rollback(
    request: Request[Any, Any, Any],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    principal: NamedDependency[Principal],
    release_id: FromPath[int],
) -> DeploymentOut:
    """Queue a deployment of this earlier release: its image with its configuration
    and variables, without a rebuild."""
    release = get_in_org(db, Release, release_id, current_org.id, what="release")
    app = get_in_org(db, App, release.app_id, current_org.id, what="app")
    deployment = queue.request_deploy(
        db, kernel, app, trigger="api", created_by=principal.label, rollback_release=release
    )
    out = _deployment_out(deployment)
    db.commit()  # the job is enqueued once this commit is done
    set_audit_target(request, "deployment", out.id, release_id=release_id)
    return out


# Lifecycle -------------------------------------------------------------------------------


def _app_in_org(kernel: Kernel, org_id: int, app_id: int) -> App:
    with kernel.db.session() as db:
        app = get_in_org(db, App, app_id, org_id, what="app")
        db.expunge(app)
        return app


def _status(kernel: Kernel, app_id: int, instances: list[Instance]) -> AppStatus:
    with kernel.db.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        return AppStatus(
            app_id=app.id,
            desired_state=app.desired_state,
            replicas=app.replicas,
            current_release_id=app.current_release_id,
            instances=[_instance_out(i) for i in instances],
        )


def _runtime_instances(kernel: Kernel, app_id: int) -> list[Instance]:
    try:
        return our_instances(kernel, app_id)
    except ProviderError as exc:
        raise lifecycle.RuntimeFailed(str(exc)) from exc


@get(
    f"{APP}/status",
    operation_id="apps_status",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.read"},
)
def apps_status(
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
) -> AppStatus:
    """What the app should run (desired state, replicas, release) and what runs now."""
    _app_in_org(kernel, current_org.id, app_id)
    return _status(kernel, app_id, _runtime_instances(kernel, app_id))


def _lifecycle_route(action: str, description: str) -> Any:
    @post(
        f"{APP}/{action}",
        operation_id=f"apps_{action}",
        tags=["apps"],
        sync_to_thread=True,
        status_code=200,
        opt={"permission": "apps.lifecycle"},
        name=f"apps_{action}",
        description=description,
    )
    def handler(
        request: Request[Any, Any, Any],
        kernel: NamedDependency[Kernel],
        current_org: NamedDependency[OrgContext],
        app_id: FromPath[int],
    ) -> AppStatus:
        _app_in_org(kernel, current_org.id, app_id)
        set_audit_target(request, "app", app_id)
        instances = getattr(lifecycle, action)(kernel, app_id)
        return _status(kernel, app_id, instances)

    return handler


apps_start = _lifecycle_route(
    "start", "Start the app's stopped instances (and any missing replicas) of its current release."
)
apps_stop = _lifecycle_route(
    "stop", "Stop the app's instances; they stay stopped (the reconciler too) until started."
)
apps_restart = _lifecycle_route("restart", "Restart the app's instances in place.")


@post(
    f"{APP}/scale",
    operation_id="apps_scale",
    tags=["apps"],
    sync_to_thread=True,
    status_code=200,
    opt={"permission": "apps.lifecycle"},
)
def apps_scale(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
    data: JSONBody[ScaleRequest],
) -> AppStatus:
    """Run ``replicas`` instances of the current release (0 to 10): new ones start
    health-checked, surplus ones are routed away from, drained and removed."""
    _app_in_org(kernel, current_org.id, app_id)
    set_audit_target(request, "app", app_id, replicas=data.replicas)
    instances = lifecycle.scale(kernel, app_id, data.replicas)
    return _status(kernel, app_id, instances)


@get(
    f"{APP}/logs",
    operation_id="apps_logs",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.read"},
)
def apps_logs(
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
    tail: Annotated[
        int, QueryParameter(ge=1, le=MAX_TAIL, description="lines per instance, 1 to 5000")
    ] = 100,
) -> LogLines:
    """The last ``tail`` output lines of the app's instances."""
    _app_in_org(kernel, current_org.id, app_id)
    ids = [i.id for i in _runtime_instances(kernel, app_id)]
    if not ids:
        return LogLines(lines=[])
    try:
        scrub = log_scrubber(kernel, app_id)
        lines = runtime(kernel).logs(instance_ids=ids, tail=tail)
        return LogLines(lines=[scrub(line) for line in lines])
    except ProviderError as exc:
        raise lifecycle.RuntimeFailed(str(exc)) from exc


@get(
    f"{APP}/logs/stream",
    operation_id="apps_logs_stream",
    tags=["apps"],
    opt={"permission": "apps.read"},
    media_type="text/event-stream",
)
async def apps_logs_stream(
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
    tail: Annotated[
        int, QueryParameter(ge=0, le=MAX_TAIL, description="earlier lines first, 0 to 5000")
    ] = 20,
) -> ServerSentEvent:
    """Follow the app's output as Server-Sent Events (``event: log``), starting with
    the last ``tail`` lines, until the client disconnects."""
    await anyio.to_thread.run_sync(_app_in_org, kernel, current_org.id, app_id)
    ids = [i.id for i in await anyio.to_thread.run_sync(_runtime_instances, kernel, app_id)]
    if not ids:
        raise Conflict("the app has no instances to follow")
    scrub = await anyio.to_thread.run_sync(log_scrubber, kernel, app_id)
    return ServerSentEvent(_follow(kernel, ids, tail, scrub))


async def _follow(
    kernel: Kernel, ids: list[str], tail: int, scrub: Scrubber
) -> AsyncIterator[ServerSentEventMessage]:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def deliver(item: str | None) -> bool:
        """Hand a line to the stream; False once the client is gone."""
        if stop.is_set():
            return False
        try:
            loop.call_soon_threadsafe(lines.put_nowait, item)
        except RuntimeError:  # the event loop closed: the client is gone
            return False
        return True

    def pump() -> None:
        # Blocks in the engine's log stream: it ends at the instance's next line (or its
        # exit) after the client left, when ``deliver`` says so.
        source: Iterator[str] = runtime(kernel).logs(instance_ids=ids, tail=tail, follow=True)
        try:
            for line in source:
                if not deliver(scrub(line)):
                    break
        except Exception:  # the engine went away: end the stream
            log.info("following logs of %s ended", ids, exc_info=True)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            deliver(None)

    thread = threading.Thread(target=pump, name="app-logs", daemon=True)
    thread.start()
    try:
        while True:
            try:
                line = await asyncio.wait_for(lines.get(), timeout=15)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keepalive", data=None)
                continue
            if line is None:
                return
            yield ServerSentEventMessage(event="log", data=line)
    finally:
        stop.set()


@get(
    f"{APP}/stats",
    operation_id="apps_stats",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.read"},
)
def apps_stats(
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    app_id: FromPath[int],
) -> list[InstanceStatsOut]:
    """A current sample of each running instance: CPU, memory, network, block I/O."""
    _app_in_org(kernel, current_org.id, app_id)
    ids = [i.id for i in _runtime_instances(kernel, app_id) if i.state == "running"]
    if not ids:
        return []
    try:
        stats = runtime(kernel).stats(instance_ids=ids)
    except ProviderError as exc:
        raise lifecycle.RuntimeFailed(str(exc)) from exc
    return [InstanceStatsOut(**msgspec.structs.asdict(s)) for s in stats]


ROUTES = [
    deployments_create,
    deployments_list,
    deployments_show,
    deployments_cancel,
    deployments_logs,
    releases_list,
    releases_show,
    releases_rollback,
    apps_status,
    apps_start,
    apps_stop,
    apps_restart,
    apps_scale,
    apps_logs,
    apps_logs_stream,
    apps_stats,
]
