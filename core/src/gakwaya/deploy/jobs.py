"""Job types of the deploy domain."""

from __future__ import annotations

from typing import Any

from gakwaya_sdk.jobs import JobContext, JobType


def _deploy(ctx: JobContext, deployment_id: int) -> dict[str, Any]:
    from gakwaya.deploy.pipeline import run

    return run(ctx, deployment_id)


def _teardown(ctx: JobContext, app_id: int, org_id: int) -> dict[str, Any]:
    from gakwaya.deploy.lifecycle import teardown
    from gakwaya.jobs.runner import current_kernel

    return teardown(current_kernel(ctx), app_id=app_id, log=ctx.log)


def _reconcile(ctx: JobContext) -> dict[str, Any]:
    from gakwaya.deploy.reconciler import reconcile
    from gakwaya.jobs.runner import current_kernel

    return reconcile(current_kernel(ctx), log=ctx.log).as_dict()


JOB_TYPES: list[JobType] = [
    JobType(
        name="deploy.run",
        func=_deploy,
        description="Build and start a release of an app, then switch traffic to it",
        timeout=3600,
    ),
    JobType(
        name="apps.teardown",
        func=_teardown,
        description="Remove a deleted app's instances, images and routes",
        retry_safe=True,
        timeout=600,
    ),
    JobType(
        name="deploy.reconcile",
        func=_reconcile,
        description="Converge the runtime and proxies to the desired state",
        retry_safe=True,
        timeout=600,
    ),
]
