"""Asking for deployments: one at a time per app, the newest request wins the queue.

A request stores a ``queued`` deployment in the caller's transaction and, once that
transaction has committed, enqueues the job that runs it (a job started before the
commit would not find its row). Queued deployments of the same app are superseded
on the spot; the one running goes on, and the new one waits for it to end. A
deployment whose job could not be enqueued stays ``queued`` and the reconciler
submits it again, so none is left "queued" forever.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Deployment, Release
from gakwaya.deploy.events import DeploymentCancelled, DeploymentQueued
from gakwaya.errors import Conflict, FieldError
from gakwaya_sdk.sources import GIT_REF_RULE, RuleError, check_git_ref

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.deploy")

#: The job type that runs one deployment.
DEPLOY_JOB = "deploy.run"
ACTIVE_STATES = ("queued", "running")
FINISHED_STATES = ("succeeded", "failed", "cancelled", "superseded")


def next_number(db: Session, model: type[Deployment] | type[Release], app_id: int) -> int:
    current = db.scalar(select(func.max(model.number)).where(model.app_id == app_id))
    return int(current or 0) + 1


def request_deploy(
    db: Session,
    kernel: Kernel,
    app: App,
    *,
    trigger: str,
    created_by: str,
    ref: str = "",
    rollback_release: Release | None = None,
) -> Deployment:
    """Queue a deployment of ``app`` (a rollback when ``rollback_release`` is given).

    Runs in the caller's transaction; the job is enqueued after it commits."""
    if ref:
        # The API's pattern cannot say all of the rule ('..', '.lock', '@{'): refuse
        # here, before a row is written, rather than fail in the provider later.
        try:
            check_git_ref(ref)
        except RuleError:
            raise FieldError("ref", GIT_REF_RULE) from None
    if rollback_release is not None:
        kind = "rollback"
    elif app.source_type == "image":
        if not app.image:
            raise Conflict(f"app {app.name} has no image to deploy: set 'image' first")
        kind = "image"
    else:
        if not app.git_url:
            raise Conflict(f"app {app.name} has no git repository: set 'git_url' first")
        kind = "build"
    # Lock the app row (PostgreSQL) so two requests number their deployments in turn.
    db.execute(select(App.id).where(App.id == app.id).with_for_update())
    superseded = list(
        db.scalars(
            select(Deployment).where(Deployment.app_id == app.id, Deployment.state == "queued")
        )
    )
    now = utcnow()
    for old in superseded:
        old.state = "superseded"
        old.finished_at = now
        old.error = "superseded by a newer deployment"
    deployment = Deployment(
        org_id=app.org_id,
        app_id=app.id,
        number=next_number(db, Deployment, app.id),
        kind=kind,
        state="queued",
        ref=ref or (app.git_ref if kind == "build" else ""),
        rollback_release_id=rollback_release.id if rollback_release is not None else None,
        trigger=trigger,
        created_by=created_by[:300],
        created_at=now,
    )
    db.add(deployment)
    db.flush()
    deployment_id, app_id, org_id, number = deployment.id, app.id, app.org_id, deployment.number
    old_jobs = [(d.id, d.job_id) for d in superseded]

    def _after_commit(_session: Session) -> None:
        for old_id, job_id in old_jobs:
            _cancel_job(kernel, job_id)
            kernel.events.publish(
                DeploymentCancelled(
                    org_id=org_id, app_id=app_id, deployment_id=old_id, reason="superseded"
                )
            )
        kernel.events.publish(
            DeploymentQueued(
                org_id=org_id, app_id=app_id, deployment_id=deployment_id, number=number, kind=kind
            )
        )
        submit(kernel, deployment_id, org_id, created_by)

    event.listen(db, "after_commit", _after_commit, once=True)
    return deployment


def submit(kernel: Kernel, deployment_id: int, org_id: int, created_by: str = "") -> str | None:
    """Enqueue the job of a queued deployment and record its id. A failure is logged:
    the deployment stays queued and the reconciler tries again."""
    try:
        job = kernel.jobs.enqueue(
            DEPLOY_JOB,
            org_id=org_id,
            arguments={"deployment_id": deployment_id},
            created_by=created_by,
        )
    except Exception:
        log.exception("deployment %s: enqueueing its job failed", deployment_id)
        return None
    with kernel.db.transaction() as db:
        db.execute(
            update(Deployment).where(Deployment.id == deployment_id).values(job_id=job.id),
            execution_options={"synchronize_session": False},
        )
    return str(job.id)


def _cancel_job(kernel: Kernel, job_id: str | None) -> None:
    if not job_id:
        return
    try:
        kernel.jobs.cancel(job_id, by="a newer deployment")
    except Exception:  # already finished, or gone: nothing to cancel
        log.debug("job %s: not cancelled", job_id, exc_info=True)


def cancel(kernel: Kernel, deployment_id: int, *, by: str) -> None:
    """Cancel a queued or running deployment (the caller checked it is the org's).

    A queued one ends ``cancelled`` here; a running one is asked to stop through its
    job and ends ``cancelled`` when the pipeline has cleaned up."""
    with kernel.db.transaction() as db:
        deployment = db.get(Deployment, deployment_id)
        if deployment is None or deployment.state not in ACTIVE_STATES:
            state = deployment.state if deployment is not None else "gone"
            raise Conflict(
                f"deployment {deployment_id} already ended {state}; only queued or running "
                "deployments can be cancelled"
            )
        job_id, state = deployment.job_id, deployment.state
        app_id, org_id = deployment.app_id, deployment.org_id
        if state == "queued":
            deployment.state = "cancelled"
            deployment.finished_at = utcnow()
            deployment.error = f"cancelled by {by}"
    if state == "queued":
        _cancel_job(kernel, job_id)
        kernel.events.publish(
            DeploymentCancelled(
                org_id=org_id, app_id=app_id, deployment_id=deployment_id, reason="cancelled"
            )
        )
        return
    if job_id:
        try:
            kernel.jobs.cancel(job_id, by=by)
            return
        except Exception:
            log.info("deployment %s: its job could not be cancelled", deployment_id, exc_info=True)
    # Running with no live job: nothing will finish it but us.
    from gakwaya.deploy.pipeline import finish

    finish(kernel, deployment_id, "cancelled", error=f"cancelled by {by}")
