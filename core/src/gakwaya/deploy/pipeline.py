"""One deployment, from source to serving: the ``deploy.run`` job.

clone → builder chosen by ``builder_for_source`` → build → release → start new
instances (health-checked by the runtime) → switch traffic (every proxy) → drain and
stop the old instances → ``deployment.succeeded``.

The previous release is never touched before the new one is healthy and routed, so
any failure (build, crash on start, health check, cancel) leaves it serving; this
module then removes what the attempt created (instances, image, release row). A
worker killed mid-way cannot clean up: the reconciler finishes such deployments and
removes their leftovers, level-triggered.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Deployment, Release
from gakwaya.deploy import keys
from gakwaya.deploy.apps import app_git_credentials
from gakwaya.deploy.envvars import app_env
from gakwaya.deploy.events import (
    DeploymentCancelled,
    DeploymentFailed,
    DeploymentStarted,
    DeploymentSucceeded,
)
from gakwaya.deploy.lifecycle import STOP_TIMEOUT
from gakwaya.deploy.logbatch import LogBatch
from gakwaya.deploy.queue import next_number
from gakwaya.deploy.runtime import (
    apply_routes,
    builder_for,
    config_of,
    open_env,
    our_instances,
    runtime,
    seal_env,
    source_for,
    spec_for,
)
from gakwaya.jobs.context import RunningJob, Scrubber
from gakwaya_sdk.jobs import JobCancelled, JobContext
from gakwaya_sdk.providers import BuildRequest, Instance, ProviderError, SourceSpec, SourceTree
from gakwaya_sdk.sources import RuleError, confine

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.deploy")

#: Seconds between two looks at the app's running deployment while waiting our turn.
WAIT_POLL = 1.0


class DeployFailed(Exception):
    """A step failed for a reason the user can act on; the message says which."""


@dataclass
class _Attempt:
    """What this attempt created, so a failure removes exactly that."""

    release_id: int | None = None
    release_created: bool = False
    image: str = ""
    instances: list[Instance] = field(default_factory=list)
    switched: bool = False
    previous_release_id: int | None = None


def run(ctx: JobContext, deployment_id: int) -> dict[str, Any]:
    """The ``deploy.run`` job."""
    from gakwaya.jobs.runner import current_kernel

    kernel = current_kernel(ctx)
    if not _wait_turn(kernel, ctx, deployment_id):
        return {"deployment_id": deployment_id, "state": "skipped"}
    attempt = _Attempt()
    # The deployment's log (its own lines and its providers' output) is written in
    # batches; every path below writes what is held before the deployment ends.
    out = LogBatch(ctx)
    try:
        release_id = _deploy(kernel, ctx, out, deployment_id, attempt)
    except JobCancelled as exc:
        out.settle()
        _clean(kernel, ctx, attempt)
        finish(kernel, deployment_id, "cancelled", error=str(exc))
        raise
    except (DeployFailed, ProviderError, RuleError) as exc:
        out.settle()
        _clean(kernel, ctx, attempt)
        if ctx.cancelled():
            finish(kernel, deployment_id, "cancelled", error="cancel requested")
            raise JobCancelled("cancel requested") from exc
        reason = _scrubbed(ctx, str(exc))
        ctx.log(f"deployment failed: {reason}")
        finish(kernel, deployment_id, "failed", error=reason)
        raise DeployFailed(reason) from None
    except Exception as exc:
        out.settle()
        _clean(kernel, ctx, attempt)
        reason = _scrubbed(ctx, f"internal error: {exc!r}")
        finish(kernel, deployment_id, "failed", error=reason)
        raise DeployFailed(reason) from None
    finally:
        out.settle()
    return {"deployment_id": deployment_id, "state": "succeeded", "release_id": release_id}


def _wait_turn(kernel: Kernel, ctx: JobContext, deployment_id: int) -> bool:
    """Claim the app for this deployment (queued → running) once no other deployment
    of the app runs. False when it was superseded or cancelled meanwhile."""
    announced = False
    while True:
        with kernel.db.transaction() as db:
            deployment = db.get(Deployment, deployment_id)
            if deployment is None or deployment.state != "queued":
                return False
            busy = db.scalar(
                select(Deployment.id).where(
                    Deployment.app_id == deployment.app_id,
                    Deployment.state == "running",
                    Deployment.id != deployment_id,
                )
            )
            if busy is None:
                claimed = db.execute(
                    update(Deployment)
                    .where(Deployment.id == deployment_id, Deployment.state == "queued")
                    .values(state="running", started_at=utcnow()),
                    execution_options={"synchronize_session": False},
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    app_id, org_id = deployment.app_id, deployment.org_id
                    break
                return False
        if not announced:
            ctx.log(f"waiting for deployment {busy} of this app to finish")
            announced = True
        ctx.sleep(WAIT_POLL)
    kernel.events.publish(
        DeploymentStarted(org_id=org_id, app_id=app_id, deployment_id=deployment_id)
    )
    return True


def _deploy(
    kernel: Kernel, ctx: JobContext, out: LogBatch, deployment_id: int, attempt: _Attempt
) -> int:
    with kernel.db.transaction(write=False) as db:
        deployment = db.get(Deployment, deployment_id)
        assert deployment is not None
        app = db.get(App, deployment.app_id)
        if app is None:
            raise DeployFailed("the app was deleted")
        db.expunge(app)
        kind, ref, rollback_id = deployment.kind, deployment.ref, deployment.rollback_release_id
        number = deployment.number
        attempt.previous_release_id = app.current_release_id
        env = app_env(kernel.box, db, app)
        credentials = {k: v for k, v in app_git_credentials(kernel.box, app).items() if v}
    _scrub_secrets(ctx, [v for v, secret in env.values() if secret] + list(credentials.values()))
    out(f"deployment {number} of app {app.name} ({kind})")

    if kind == "rollback":
        release = _rollback_release(kernel, app, rollback_id)
        attempt.release_id = release.id
        env = open_env(kernel.box, release.env_ciphertext)
        _scrub_secrets(ctx, [v for v, secret in env.values() if secret])
        out(f"rolling back to release v{release.number} (image {release.image_id[:19]})")
    else:
        if kind == "build":
            image, image_id, commit = _build(
                kernel, ctx, out, app, deployment_id, ref, credentials, attempt
            )
        else:
            image, commit = app.image, ""
            image_id = runtime(kernel).prepare_image(
                image=app.image, log=out, cancelled=ctx.cancelled
            )
        release = _create_release(kernel, app, deployment_id, image, image_id, commit, env)
        attempt.release_id = release.id
        attempt.release_created = True
        out(f"release v{release.number} created")
    ctx.progress(60)
    ctx.check_cancelled()

    rt = runtime(kernel)
    old = our_instances(kernel, app.id)
    replicas = app.replicas if app.desired_state == "running" else 0
    if replicas > 0:
        out(f"starting {replicas} instance(s) of v{release.number}")
        spec = spec_for(kernel, app, release, env, replicas=replicas, deployment_id=deployment_id)
        attempt.instances = rt.start(spec=spec, log=out, cancelled=ctx.cancelled)
        out(f"{len(attempt.instances)} instance(s) healthy")
    ctx.check_cancelled()
    ctx.progress(80)

    # The app's default domain (an app older than the proxy_base_domain setting has
    # none yet), so the switch routes it too.
    from gakwaya.domains.services import ensure_default_domains

    ensure_default_domains(kernel, app_ids=[app.id])

    # Switch: the release becomes current, then every proxy gets the new routes.
    _set_current(kernel, app.id, release.id)
    attempt.switched = True
    apply_routes(kernel)
    out("traffic switched to the new release")

    # Past this point the deployment has succeeded: a cancel no longer undoes it. Its
    # log is complete before its state says so (a follower stops reading then).
    out.flush()
    finish(kernel, deployment_id, "succeeded", release_id=release.id, commit=release.commit)
    if old:
        _retire(kernel, out, old)
    ctx.progress(100)
    return release.id


def _retire(kernel: Kernel, out: LogBatch, old: list[Instance]) -> None:
    """Stop the previous release's instances once no proxy routes to them any more:
    first ``deploy_drain_seconds`` for the requests they are still answering (a proxy
    finishes those on its old configuration), then SIGTERM, and SIGKILL after
    ``STOP_TIMEOUT`` (the lifecycle's). The deployment has already succeeded: this is
    cleanup."""
    drain = float(kernel.settings.deploy_drain_seconds)
    out(f"draining {len(old)} old instance(s) for {drain:g}s, then stopping them")
    time.sleep(drain)
    try:
        runtime(kernel).remove(instance_ids=[i.id for i in old], drain_seconds=STOP_TIMEOUT)
    except ProviderError as exc:
        out(f"old instances not all removed ({exc}); the reconciler will retry")


def _scrubbed(ctx: JobContext, text: str) -> str:
    """``text`` without the secrets this deployment handles (an error message may quote
    a provider's output), before it reaches the deployment row, its event and the job."""
    return ctx.scrub(text) if isinstance(ctx, RunningJob) else text


def _scrub_secrets(ctx: JobContext, secrets: list[str]) -> None:
    if isinstance(ctx, RunningJob) and secrets:
        ctx.scrub = Scrubber([*ctx.scrub.secrets, *secrets])


def _build(
    kernel: Kernel,
    ctx: JobContext,
    out: LogBatch,
    app: App,
    deployment_id: int,
    ref: str,
    credentials: dict[str, str],
    attempt: _Attempt,
) -> tuple[str, str, str]:
    work = kernel.settings.data_path / "builds"
    work.mkdir(parents=True, exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix=f"d{deployment_id}-", dir=work))
    try:
        source = source_for(kernel, app.git_url)
        out(f"fetching {app.git_url} at {ref or app.git_ref}")
        revision = source.fetch(
            spec=SourceSpec(url=app.git_url, ref=ref or app.git_ref, credentials=credentials),
            dest=str(checkout),
            log=out,
            cancelled=ctx.cancelled,
        )
        out(f"commit {revision.commit}" + (f": {revision.message}" if revision.message else ""))
        ctx.progress(20)
        ctx.check_cancelled()
        context = confine(checkout, app.subdirectory) if app.subdirectory else checkout.resolve()
        if not context.is_dir():
            raise DeployFailed(
                f"subdirectory {app.subdirectory!r} is not a directory in the repository"
            )
        dockerfile = confine(context, app.dockerfile)
        if not dockerfile.is_file() and dockerfile.exists():
            raise DeployFailed(f"dockerfile {app.dockerfile!r} is not a file")
        relative = str(dockerfile.relative_to(context))
        builder = builder_for(kernel, SourceTree(context_dir=str(context), dockerfile=relative))
        # No labels: the image is known by its tag (keys.image_prefix), and a label
        # would cost a build step.
        image = keys.image_tag(kernel.installation_id, app.id, deployment_id)
        attempt.image = image
        out(f"building {image} with {builder.capability}")
        result = builder.build(
            request=BuildRequest(
                context_dir=str(context), image=image, dockerfile=relative, org_id=app.org_id
            ),
            log=out,
            cancelled=ctx.cancelled,
        )
        out(f"built {result.image} ({result.digest[:19]})")
        return result.image, result.digest, revision.commit
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def _rollback_release(kernel: Kernel, app: App, release_id: int | None) -> Release:
    with kernel.db.transaction(write=False) as db:
        release = db.get(Release, release_id) if release_id is not None else None
        if release is None or release.app_id != app.id:
            raise DeployFailed(f"release {release_id} of this app no longer exists")
        db.expunge(release)
        return release


def _create_release(
    kernel: Kernel,
    app: App,
    deployment_id: int,
    image: str,
    image_id: str,
    commit: str,
    env: dict[str, tuple[str, bool]],
) -> Release:
    with kernel.db.transaction() as db:
        db.execute(select(App.id).where(App.id == app.id).with_for_update())
        release = Release(
            org_id=app.org_id,
            app_id=app.id,
            number=next_number(db, Release, app.id),
            image=image,
            image_id=image_id,
            commit=commit,
            config=config_of(app),
            env_ciphertext=seal_env(kernel.box, env),
            deployment_id=deployment_id,
            created_at=utcnow(),
        )
        db.add(release)
        db.flush()
        db.execute(
            update(Deployment)
            .where(Deployment.id == deployment_id)
            .values(release_id=release.id, commit=commit),
            execution_options={"synchronize_session": False},
        )
        db.expunge(release)
    return release


def _set_current(kernel: Kernel, app_id: int, release_id: int | None) -> None:
    with kernel.db.transaction() as db:
        db.execute(
            update(App)
            .where(App.id == app_id)
            .values(current_release_id=release_id, updated_at=utcnow()),
            execution_options={"synchronize_session": False},
        )


def _clean(kernel: Kernel, ctx: JobContext, attempt: _Attempt) -> None:
    """Undo what this attempt did, so the previous release serves as before."""
    try:
        rt = runtime(kernel)
    except Exception:
        return
    if attempt.switched:
        try:
            with kernel.db.transaction() as db:
                app_id = db.scalar(select(Release.app_id).where(Release.id == attempt.release_id))
            if app_id is not None:
                _set_current(kernel, app_id, attempt.previous_release_id)
        except Exception:
            log.exception("restoring the previous release failed")
    if attempt.instances:
        try:
            rt.remove(instance_ids=[i.id for i in attempt.instances])
            ctx.log(f"removed {len(attempt.instances)} new instance(s)")
        except Exception as exc:
            ctx.log(f"removing the new instances failed ({exc}); the reconciler will retry")
    if attempt.switched:
        try:
            apply_routes(kernel)
        except Exception as exc:
            ctx.log(f"restoring the routes failed ({exc}); the reconciler will retry")
    if attempt.release_created and attempt.release_id is not None:
        with kernel.db.transaction() as db:
            release = db.get(Release, attempt.release_id)
            if release is not None:
                db.delete(release)
    if attempt.image:
        try:
            rt.remove_image(image=attempt.image)
        except Exception as exc:
            ctx.log(f"removing image {attempt.image} failed ({exc}); the reconciler will retry")


def finish(
    kernel: Kernel,
    deployment_id: int,
    state: str,
    *,
    error: str | None = None,
    release_id: int | None = None,
    commit: str = "",
) -> bool:
    """End a deployment that is still queued or running; publish its event. False when
    it had already ended (a reconciler and a late job agree on one outcome)."""
    values: dict[str, Any] = {"state": state, "finished_at": utcnow(), "error": error}
    if release_id is not None:
        values["release_id"] = release_id
    if commit:
        values["commit"] = commit
    with kernel.db.transaction() as db:
        done = db.execute(
            update(Deployment)
            .where(Deployment.id == deployment_id, Deployment.state.in_(("queued", "running")))
            .values(**values),
            execution_options={"synchronize_session": False},
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return False
        row = db.execute(
            select(Deployment.app_id, Deployment.org_id).where(Deployment.id == deployment_id)
        ).one()
    app_id, org_id = row
    event: Any
    if state == "succeeded":
        event = DeploymentSucceeded(
            org_id=org_id,
            app_id=app_id,
            deployment_id=deployment_id,
            release_id=release_id or 0,
            commit=commit,
        )
    elif state == "cancelled":
        event = DeploymentCancelled(
            org_id=org_id, app_id=app_id, deployment_id=deployment_id, reason="cancelled"
        )
    else:
        event = DeploymentFailed(
            org_id=org_id, app_id=app_id, deployment_id=deployment_id, error=error or ""
        )
    kernel.events.publish(event)
    return True
