"""``gakwaya app deploy|deployments|releases|rollback|start|stop|restart|scale|status|
logs|stats``, ``gakwaya deployment show|cancel`` and ``gakwaya reconcile``.

The same services as the API. A deployment asked for here is queued like one asked
through the API: the panel's job runner (or a ``gakwaya worker``) runs it; ``--wait``
follows its log until it ends and exits non-zero when it did not succeed.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click
from sqlalchemy import select

from gakwaya.cli.app import app_group
from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, run
from gakwaya.cli.project import ORG_OPTION

ACTOR = "cli"
#: Seconds between two looks at a deployment followed with --wait.
POLL = 0.5


def _app(kernel: Any, org_slug: str, ref: str) -> tuple[int, int]:
    from gakwaya.deploy import apps
    from gakwaya.orgs import services as orgs

    with kernel.db.session() as db:
        org = orgs.get_org_by_slug(db, org_slug)
        return org.id, apps.find_app(db, org.id, ref).id


def _follow(kernel: Any, deployment_id: int) -> str:
    """Print the deployment's log lines as they come; return its final state."""
    from gakwaya.db.models import Deployment
    from gakwaya.deploy.queue import FINISHED_STATES
    from gakwaya.jobs.services import log_after

    last = 0
    while True:
        with kernel.db.session() as db:
            row = db.get(Deployment, deployment_id)
            assert row is not None
            state, job_id = row.state, row.job_id
            lines = log_after(db, job_id, last)
        for line_id, line in lines:
            click.echo(line)
            last = line_id
        if state in FINISHED_STATES and not lines:
            return str(state)
        time.sleep(POLL)


@app_group.command("deploy")
@ORG_OPTION
@click.argument("app")
@click.option("--ref", default=None, help="Branch, tag or commit (default: the app's).")
@click.option("--wait", is_flag=True, help="Follow the log until the deployment ends.")
def deploy(org_slug: str, app: str, ref: str | None, wait: bool) -> None:
    """Queue a deployment of APP (id or project/environment/name)."""
    from gakwaya.db.models import App
    from gakwaya.deploy import queue
    from gakwaya_sdk.sources import RuleError, check_git_ref

    if ref is not None:
        try:
            check_git_ref(ref)
        except RuleError as exc:
            fail(f"--ref: {exc}", code=2)

    def work(kernel: Any) -> None:
        org_id, app_id = _app(kernel, org_slug, app)
        with kernel.db.session(write=True) as db:
            row = db.get(App, app_id)
            assert row is not None
            deployment = queue.request_deploy(
                db, kernel, row, trigger="cli", created_by=ACTOR, ref=ref or ""
            )
            deployment_id, number = deployment.id, deployment.number
            db.commit()
        audit(
            kernel,
            "app deploy",
            "deployments_create",
            org_id=org_id,
            target_type="deployment",
            target_id=str(deployment_id),
            detail={"app_id": app_id, "ref": ref or ""},
        )
        click.echo(f"deployment {deployment_id} (#{number}) queued")
        if wait:
            _finish(_follow(kernel, deployment_id))

    run(work)


def _finish(state: str) -> None:
    if state != "succeeded":
        fail(f"deployment {state}")
    click.secho("deployment succeeded", fg="green")


@app_group.command("deployments")
@ORG_OPTION
@click.argument("app")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
def deployments(org_slug: str, app: str, limit: int) -> None:
    """The app's deployments, newest first (the queue is the queued and running ones)."""
    from gakwaya.db.models import Deployment

    def work(kernel: Any) -> None:
        _org_id, app_id = _app(kernel, org_slug, app)
        with kernel.db.session() as db:
            rows = db.scalars(
                select(Deployment)
                .where(Deployment.app_id == app_id)
                .order_by(Deployment.id.desc())
                .limit(limit)
            )
            for d in rows:
                click.echo(
                    f"{d.id}\t#{d.number}\t{d.kind}\t{d.state}\t{d.commit[:12] or '-'}\t"
                    f"{d.created_at:%Y-%m-%d %H:%M:%S}\t{d.error or ''}"
                )

    run(work)


@app_group.command("releases")
@ORG_OPTION
@click.argument("app")
def releases(org_slug: str, app: str) -> None:
    """The app's releases, newest first; * marks the one serving."""
    from gakwaya.db.models import App, Release

    def work(kernel: Any) -> None:
        _org_id, app_id = _app(kernel, org_slug, app)
        with kernel.db.session() as db:
            current = db.get(App, app_id).current_release_id
            for r in db.scalars(
                select(Release).where(Release.app_id == app_id).order_by(Release.id.desc())
            ):
                mark = "*" if r.id == current else " "
                click.echo(
                    f"{mark} v{r.number}\tid {r.id}\t{r.commit[:12] or '-'}\t"
                    f"{r.image_id[:19]}\t{r.created_at:%Y-%m-%d %H:%M:%S}"
                )

    run(work)


@app_group.command("rollback")
@ORG_OPTION
@click.argument("app")
@click.argument("release", type=int)
@click.option("--wait", is_flag=True, help="Follow the log until the deployment ends.")
def rollback(org_slug: str, app: str, release: int, wait: bool) -> None:
    """Redeploy release number RELEASE (v3 → 3) of APP: its image and configuration,
    without a rebuild."""
    from gakwaya.db.models import App, Release
    from gakwaya.deploy import queue
    from gakwaya.errors import NotFound

    def work(kernel: Any) -> None:
        org_id, app_id = _app(kernel, org_slug, app)
        with kernel.db.session(write=True) as db:
            target = db.scalars(
                select(Release).where(Release.app_id == app_id, Release.number == release)
            ).first()
            if target is None:
                raise NotFound(f"release v{release} of app {app} not found")
            row = db.get(App, app_id)
            assert row is not None
            deployment = queue.request_deploy(
                db, kernel, row, trigger="cli", created_by=ACTOR, rollback_release=target
            )
            deployment_id = deployment.id
            db.commit()
        audit(
            kernel,
            "app rollback",
            "releases_rollback",
            org_id=org_id,
            target_type="deployment",
            target_id=str(deployment_id),
            detail={"app_id": app_id, "release": release},
        )
        click.echo(f"deployment {deployment_id} queued: rollback to v{release}")
        if wait:
            _finish(_follow(kernel, deployment_id))

    run(work)


def _print_status(kernel: Any, app_id: int, instances: list[Any]) -> None:
    from gakwaya.db.models import App

    with kernel.db.session() as db:
        row = db.get(App, app_id)
        assert row is not None
        click.echo(
            f"desired {row.desired_state}, {row.replicas} replica(s), "
            f"release id {row.current_release_id or '-'}"
        )
    for inst in instances:
        click.echo(f"{inst.name}\t{inst.release}\t{inst.state}\t{inst.address or '-'}")


def _lifecycle(action: str, help_text: str) -> None:
    @app_group.command(action, help=help_text)
    @ORG_OPTION
    @click.argument("app")
    def command(org_slug: str, app: str) -> None:
        from gakwaya.deploy import lifecycle

        def work(kernel: Any) -> None:
            org_id, app_id = _app(kernel, org_slug, app)
            instances = getattr(lifecycle, action)(kernel, app_id)
            audit(
                kernel,
                f"app {action}",
                f"apps_{action}",
                org_id=org_id,
                target_type="app",
                target_id=str(app_id),
            )
            _print_status(kernel, app_id, instances)

        run(work)


_lifecycle("start", "Start APP's stopped instances (and missing replicas).")
_lifecycle("stop", "Stop APP's instances until it is started again.")
_lifecycle("restart", "Restart APP's instances in place.")


@app_group.command("scale")
@ORG_OPTION
@click.argument("app")
@click.argument("replicas", type=click.IntRange(0, 10))
def scale(org_slug: str, app: str, replicas: int) -> None:
    """Run REPLICAS (0 to 10) instances of APP's current release."""
    from gakwaya.deploy import lifecycle

    def work(kernel: Any) -> None:
        org_id, app_id = _app(kernel, org_slug, app)
        instances = lifecycle.scale(kernel, app_id, replicas)
        audit(
            kernel,
            "app scale",
            "apps_scale",
            org_id=org_id,
            target_type="app",
            target_id=str(app_id),
            detail={"replicas": replicas},
        )
        _print_status(kernel, app_id, instances)

    run(work)


@app_group.command("status")
@ORG_OPTION
@click.argument("app")
def status(org_slug: str, app: str) -> None:
    """What APP should run and what runs now."""
    from gakwaya.deploy.runtime import our_instances

    def work(kernel: Any) -> None:
        _org_id, app_id = _app(kernel, org_slug, app)
        _print_status(kernel, app_id, our_instances(kernel, app_id))

    run(work)


@app_group.command("logs")
@ORG_OPTION
@click.argument("app")
@click.option("--tail", default=100, show_default=True, type=click.IntRange(0, 5000))
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs(org_slug: str, app: str, tail: int, follow: bool) -> None:
    """APP's output, secret values scrubbed."""
    from gakwaya.deploy.runtime import log_scrubber, our_instances, runtime

    def work(kernel: Any) -> None:
        _org_id, app_id = _app(kernel, org_slug, app)
        ids = [i.id for i in our_instances(kernel, app_id)]
        if not ids:
            fail("the app has no instances")
        scrub = log_scrubber(kernel, app_id)
        lines = runtime(kernel).logs(instance_ids=ids, tail=tail, follow=follow)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow
            for line in lines:
                click.echo(scrub(line))

    run(work)


@app_group.command("stats")
@ORG_OPTION
@click.argument("app")
def stats(org_slug: str, app: str) -> None:
    """A current sample of each running instance of APP, as JSON lines."""
    import msgspec

    from gakwaya.deploy.runtime import our_instances, runtime

    def work(kernel: Any) -> None:
        _org_id, app_id = _app(kernel, org_slug, app)
        ids = [i.id for i in our_instances(kernel, app_id) if i.state == "running"]
        for sample in runtime(kernel).stats(instance_ids=ids) if ids else []:
            click.echo(json.dumps(msgspec.to_builtins(sample)))

    run(work)


@main.group("deployment")
def deployment_group() -> None:
    """Show and cancel deployments."""


@deployment_group.command("show")
@ORG_OPTION
@click.argument("deployment_id", type=int)
def deployment_show(org_slug: str, deployment_id: int) -> None:
    """A deployment's state and its full log."""
    from gakwaya.db.models import Deployment
    from gakwaya.jobs.services import log_after
    from gakwaya.orgs import services as orgs
    from gakwaya.orgs.scoped import get_in_org

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            d = get_in_org(db, Deployment, deployment_id, org.id, what="deployment")
            click.echo(f"deployment {d.id} (#{d.number}, {d.kind}) of app {d.app_id}: {d.state}")
            if d.error:
                click.echo(f"error: {d.error}")
            for _id, line in log_after(db, d.job_id):
                click.echo(line)

    run(work)


@deployment_group.command("cancel")
@ORG_OPTION
@click.argument("deployment_id", type=int)
def deployment_cancel(org_slug: str, deployment_id: int) -> None:
    """Cancel a queued or running deployment (the previous release keeps serving)."""
    from gakwaya.db.models import Deployment
    from gakwaya.deploy import queue
    from gakwaya.orgs import services as orgs
    from gakwaya.orgs.scoped import get_in_org

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            get_in_org(db, Deployment, deployment_id, org.id, what="deployment")
            org_id = org.id
        queue.cancel(kernel, deployment_id, by="gakwaya deployment cancel")
        audit(
            kernel,
            "deployment cancel",
            "deployments_cancel",
            org_id=org_id,
            target_type="deployment",
            target_id=str(deployment_id),
        )
        click.echo(f"deployment {deployment_id}: cancel requested")

    run(work)


@main.command("reconcile")
def reconcile_command() -> None:
    """Compare the desired state with the runtime and converge them once; print what
    differed and what was done."""
    from gakwaya.deploy.reconciler import reconcile

    def work(kernel: Any) -> None:
        report = reconcile(kernel)
        for line in report.drift:
            click.echo(f"drift: {line}")
        for line in report.actions:
            click.echo(f"done: {line}")
        for line in report.errors:
            click.secho(f"error: {line}", fg="red")
        if not (report.drift or report.actions or report.errors):
            click.echo("in sync")
        if report.errors:
            raise SystemExit(1)

    run(work)
