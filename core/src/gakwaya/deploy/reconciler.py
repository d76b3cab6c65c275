"""The reconciler: compares the desired state (database) with the runtime and the
proxies, and converges them. Runs at start-up and every ``reconcile_interval``
seconds in each serving process (idempotent, so two panels running it agree), and on
demand (``gakwaya reconcile``, the ``deploy.reconcile`` job).

One pass:

1. deployments still ``queued``/``running`` whose job ended or vanished (a worker
   killed mid-build, a panel restarted mid-deploy) end ``failed``; queued ones
   whose job was never enqueued are submitted again;
2. for each app with no deployment running: exited instances of its current release
   are started again (``app.crashed``), missing replicas are started, surplus ones
   and instances of other releases are removed, a stopped app's running instances
   stopped (``app.drift``);
3. instances labelled as ours whose app is gone are removed, and so are the names of
   our images (``gakwaya/<installation>-a<app>:d<deployment>``) whose app is gone or
   whose deployment failed, when no release uses the image; release rows a failed
   deployment left are deleted;
4. every proxy gets the desired routes again when what it serves differs (a proxy
   that restarted gets its routes back).

Between 1 and 2, :func:`gakwaya.domains.reconcile.reconcile_domains` gives apps their
default domains, verifies pending custom domains by their TXT record and polls the
certificates' state.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Deployment, Job, Release
from gakwaya.deploy import keys
from gakwaya.deploy.events import AppCrashed, AppDrift
from gakwaya.deploy.pipeline import finish
from gakwaya.deploy.queue import submit
from gakwaya.deploy.runtime import (
    MissingProvider,
    desired_routes,
    open_env,
    our_instances,
    proxies,
    routes_lock,
    runtime,
    serves,
    spec_for,
)
from gakwaya.domains.reconcile import reconcile_domains
from gakwaya_sdk.providers import Instance, ProviderError, routes_key

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.deploy.reconciler")

#: A queued deployment with no job id this long after it was created is resubmitted.
RESUBMIT_AFTER = dt.timedelta(seconds=30)


@dataclass
class Report:
    drift: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"drift": self.drift, "actions": self.actions, "errors": self.errors}


def reconcile(kernel: Kernel, *, log: Callable[[str], None] | None = None) -> Report:
    report = Report()
    say = log or (lambda _line: None)
    with kernel.db.transaction(write=False) as db:
        idle = db.scalar(select(App.id).limit(1)) is None and (
            db.scalar(select(Deployment.id).limit(1)) is None
        )
    if idle:
        # Nothing was ever deployed here: nothing to converge (and no engine to ask),
        # but the panel's own domain, which an HTTP proxy serves all the same.
        if kernel.settings.panel_domain:
            _routes(kernel, report, instances=[])
        return report
    _deployments(kernel, report)
    # Default domains, TXT verification, certificate states: before the routes, so a
    # domain verified now is routed in this pass.
    reconcile_domains(kernel, report)
    try:
        runtime(kernel)
    except MissingProvider as exc:
        report.errors.append(str(exc))
        return report
    try:
        instances = our_instances(kernel)
    except ProviderError as exc:
        report.errors.append(f"runtime: {exc}")
        return report
    _apps(kernel, instances, report)
    _garbage(kernel, instances, report)
    _routes(kernel, report)
    for line in report.drift + report.actions + report.errors:
        say(line)
    return report


def _deployments(kernel: Kernel, report: Report) -> None:
    now = utcnow()
    with kernel.db.transaction(write=False) as db:
        rows = list(
            db.execute(
                select(
                    Deployment.id,
                    Deployment.state,
                    Deployment.job_id,
                    Deployment.org_id,
                    Deployment.created_at,
                    Job.state,
                    Job.error,
                )
                .outerjoin(Job, Job.id == Deployment.job_id)
                .where(Deployment.state.in_(("queued", "running")))
            )
        )
    for dep_id, state, job_id, org_id, created_at, job_state, job_error in rows:
        if job_id is None:
            if state == "queued" and now - created_at > RESUBMIT_AFTER:
                submit(kernel, dep_id, org_id, "reconciler")
                report.actions.append(f"deployment {dep_id}: its job was lost; submitted again")
            elif state == "running":
                _fail(kernel, report, dep_id, "the process running it stopped")
            continue
        if job_state is None:
            _fail(kernel, report, dep_id, "its job record is gone")
        elif job_state in ("failed", "cancelled", "succeeded"):
            reason = f"its job ended {job_state}" + (f": {job_error}" if job_error else "")
            if job_state == "cancelled" and state == "queued":
                if finish(kernel, dep_id, "cancelled", error=reason):
                    report.actions.append(f"deployment {dep_id}: cancelled ({reason})")
            else:
                _fail(kernel, report, dep_id, reason)


def _fail(kernel: Kernel, report: Report, deployment_id: int, reason: str) -> None:
    if finish(kernel, deployment_id, "failed", error=reason):
        report.actions.append(f"deployment {deployment_id}: marked failed ({reason})")


def _apps(kernel: Kernel, instances: list[Instance], report: Report) -> None:
    rt = runtime(kernel)
    with kernel.db.transaction(write=False) as db:
        apps = list(db.scalars(select(App)))
        # An app is busy while a deployment of it is unfinished, and also while the job
        # of a finished one still runs: after success it drains the old release's
        # instances, which must not be removed here before their requests finish.
        busy = set(
            db.scalars(
                select(Deployment.app_id)
                .outerjoin(Job, Job.id == Deployment.job_id)
                .where(
                    Deployment.state.in_(("queued", "running"))
                    | Job.state.in_(("queued", "running"))
                )
            )
        )
        releases = {
            r.id: r
            for r in db.scalars(
                select(Release).where(
                    Release.id.in_([a.current_release_id for a in apps if a.current_release_id])
                )
            )
        }
        for obj in [*apps, *releases.values()]:
            db.expunge(obj)
    by_app: dict[str, list[Instance]] = {}
    for inst in instances:
        by_app.setdefault(inst.app, []).append(inst)
    for app in apps:
        key = keys.app_key(kernel.installation_id, app.id)
        if app.id in busy:
            continue
        mine = by_app.get(key, [])
        release = releases.get(app.current_release_id or -1)
        current_key = keys.release_key(release.id) if release is not None else None
        stale = [i for i in mine if i.release != current_key]
        current = [i for i in mine if i.release == current_key]
        try:
            if stale:
                rt.remove(instance_ids=[i.id for i in stale])
                _drift(kernel, report, app, f"removed {len(stale)} instance(s) of other releases")
            if release is None:
                continue
            if app.desired_state == "stopped":
                running = [i for i in current if i.state in ("running", "restarting")]
                if running:
                    rt.stop(instance_ids=[i.id for i in running])
                    _drift(
                        kernel, report, app, f"stopped {len(running)} instance(s) of a stopped app"
                    )
                continue
            dead = [i for i in current if i.state in ("exited", "dead", "created")]
            if dead:
                rt.resume(instance_ids=[i.id for i in dead])
                for inst in dead:
                    kernel.events.publish(
                        AppCrashed(
                            org_id=app.org_id,
                            app_id=app.id,
                            instance=inst.name,
                            exit_code=inst.exit_code,
                        )
                    )
                report.actions.append(f"app {app.id}: restarted {len(dead)} crashed instance(s)")
            if len(current) < app.replicas:
                missing = app.replicas - len(current)
                env = open_env(kernel.box, release.env_ciphertext)
                rt.start(
                    spec=spec_for(kernel, app, release, env, replicas=missing), log=lambda _l: None
                )
                _drift(kernel, report, app, f"started {missing} missing instance(s)")
            elif len(current) > app.replicas:
                extra = current[app.replicas :]
                rt.remove(instance_ids=[i.id for i in extra])
                _drift(kernel, report, app, f"removed {len(extra)} surplus instance(s)")
        except ProviderError as exc:
            report.errors.append(f"app {app.id}: {exc}")


def _drift(kernel: Kernel, report: Report, app: App, detail: str) -> None:
    report.drift.append(f"app {app.id}: {detail}")
    kernel.events.publish(AppDrift(org_id=app.org_id, app_id=app.id, detail=detail))


def _garbage(kernel: Kernel, instances: list[Instance], report: Report) -> None:
    rt = runtime(kernel)
    with kernel.db.transaction() as db:
        app_ids = set(db.scalars(select(App.id)))
        images_in_use = set(db.scalars(select(Release.image_id))) | set(
            db.scalars(select(Release.image))
        )
        active = set(
            db.scalars(select(Deployment.id).where(Deployment.state.in_(("queued", "running"))))
        )
        # Release rows a failed attempt could not delete (its worker died): never current.
        leftovers = list(
            db.scalars(
                select(Release)
                .join(Deployment, Deployment.id == Release.deployment_id)
                .where(Deployment.state.in_(("failed", "cancelled")))
                .where(
                    Release.id.not_in(
                        select(App.current_release_id).where(App.current_release_id.is_not(None))
                    )
                )
            )
        )
        for release in leftovers:
            images_in_use.discard(release.image_id)
            images_in_use.discard(release.image)
            db.delete(release)
            report.actions.append(f"release {release.id} of a failed deployment removed")
    orphans = [i for i in instances if keys.parse_key(i.app, "a") not in app_ids]
    try:
        if orphans:
            rt.remove(instance_ids=[i.id for i in orphans])
            report.drift.append(f"removed {len(orphans)} instance(s) of deleted apps")
            kernel.events.publish(
                AppDrift(app_id=None, detail=f"removed {len(orphans)} orphan instance(s)")
            )
        installation = kernel.installation_id
        for image in rt.images(tag_prefix=keys.image_prefix(installation)):
            if image.id in images_in_use:
                continue
            # Identical builds are one image under several names (of other deployments,
            # apps or installations): only our dead names go, the image with its last.
            for tag in image.tags:
                named = keys.parse_image_tag(tag, installation)
                if named is None or tag in images_in_use:
                    continue  # not a name we make, or a release's
                if named[0] in app_ids and named[1] in active:
                    continue
                rt.remove_image(image=tag)
                report.actions.append(f"image {tag} of a failed deployment or deleted app removed")
    except ProviderError as exc:
        report.errors.append(f"garbage: {exc}")


def _routes(kernel: Kernel, report: Report, instances: Sequence[Instance] | None = None) -> None:
    try:
        with routes_lock(kernel):
            wanted = desired_routes(
                kernel, our_instances(kernel) if instances is None else instances
            )
            for proxy in proxies(kernel):
                # Each proxy lists only the kind of route it serves (ports or domains).
                served = [r for r in wanted if serves(proxy, r)]
                if routes_key(proxy.routes()) != routes_key(served):
                    proxy.apply(routes=wanted)
                    report.drift.append(f"{proxy.capability}: routes differed; applied again")
    except ProviderError as exc:
        report.errors.append(f"routes: {exc}")


class ReconcilerService:
    """Runs :func:`reconcile` at start-up and every ``reconcile_interval`` seconds."""

    name = "reconciler"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set once the start-up pass has finished (whatever it found).
        self.started_pass = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        self.started_pass.clear()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            try:
                report = reconcile(self.kernel)
                for line in report.drift + report.errors:
                    log.info("%s", line)
            except Exception:
                log.exception("reconciler pass failed")
            self.started_pass.set()
            if self._stop.wait(float(self.kernel.settings.reconcile_interval)):
                return
