"""bench/deploy: deploy, redeploy, rollback and lifecycle times, next to plain Docker.

For the python-web fixture app (``tests/fixtures/apps/python-web``), on this machine:

- the floor, plain Docker through docker-py (the same engine API calls the panel's
  builder and runtime make): ``docker build`` + ``docker run`` + the first healthy
  HTTP answer on the published port, cold (no layer of the app in the cache) and
  warm (the layer cache of the previous build; only app.py changed, and the old
  container is removed once the new one answers, as the panel does);
- through the panel: a real Kernel (SQLite in a temporary directory, in-process jobs,
  the installed plugins: git, dockerfile, docker, portproxy) driven through its API,
  the app's repository served over HTTPS by ``git http-backend`` (HTTP/1.1 with
  keep-alive, as git hosts serve it) so the real source provider fetches it: first
  deploy (request → deployment succeeded and the app's host port answers; the bench
  reads the deployment's row every ``POLL`` seconds, as the floor polls its port, and
  fetches the deployment from the API only after the clock stops), redeploy after a
  commit changing only app code, rollback, restart, stop, start and scale;

each repeated ``--repeats`` times (median and min), with the ratios to the floor and
the issue's targets. Prints one JSON document. Usage (from the repository root):

    uv run python bench/deploy/run.py [--repeats 3] [--health-interval SECONDS]

Every container, image and network it creates is removed at the end, even on failure.
To keep cached layers of earlier runs (or of the test suite, which builds the same
Dockerfile) from making a "cold" build warm, the Dockerfile gets one
``LABEL gakwaya.bench.nonce=…`` line after ``FROM``, new for each cold build; the
floor and the panel build the same Dockerfile.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import sqlite3
import statistics
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
from cryptography.fernet import Fernet
from litestar.testing import TestClient
from sqlalchemy import select

from gakwaya.app import create_app
from gakwaya.db.models import Deployment, JobLog
from gakwaya.deploy import keys
from gakwaya.kernel import Kernel
from gakwaya.plugins import settings as plugin_settings
from gakwaya.settings import Settings
from gakwaya.testing.docker import (
    BASE_ALIAS,
    ensure_base_image,
    ensure_engine,
    remove_installation,
)
from gakwaya.testing.gitserver import (
    CA,
    HTTPS,
    TOKEN_USER,
    GitHTTPHandler,
    bare_repo,
    https_git_server,
    make_ca,
    push_tree,
)
from gakwaya.testing.people import create_org, create_user
from gakwaya.testing.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "apps" / "python-web"
FINISHED = ("succeeded", "failed", "cancelled", "superseded")
BENCH_LABEL = "gakwaya.bench.run"
#: The token the bench's git server asks for (a deploy token, as on a git host).
GIT_TOKEN = uuid.uuid4().hex
#: How often the bench looks at a deployment, a port, a health endpoint: the
#: resolution of every time below.
POLL = 0.02
#: The issue's targets.
REDEPLOY_MAX_RATIO = 1.3
ROLLBACK_MAX_S = 5.0
LIFECYCLE_MAX_S = 1.0
#: What app.py answers on /; each redeploy commit changes it (app code only).
BANNER = 'f"python-web release='


# Helpers ---------------------------------------------------------------------------------


def write_app(directory: Path, nonce: str, revision: int) -> None:
    """The fixture app with a cache-busting label and (revision > 0) changed code."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = (FIXTURE / "Dockerfile").read_text().splitlines()
    assert lines[0].startswith("FROM "), lines[0]
    lines.insert(1, f"LABEL gakwaya.bench.nonce={nonce}")
    (directory / "Dockerfile").write_text("\n".join(lines) + "\n")
    code = (FIXTURE / "app.py").read_text()
    assert BANNER in code
    if revision:
        code = code.replace(BANNER, f'f"python-web rev{revision} release=')
    (directory / "app.py").write_text(code)


def get_text(url: str, timeout: float = 2) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return int(resp.status), resp.read().decode()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL)


def answers(url: str, expect: str = "") -> Callable[[], bool]:
    def check() -> bool:
        try:
            status, body = get_text(url)
        except (OSError, urllib.error.URLError):
            return False
        return status == 200 and expect in body

    return check


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "runs_s": [round(v, 3) for v in values],
    }


# The floor: plain Docker ------------------------------------------------------------------


class Floor:
    """docker build + docker run + first healthy answer, through docker-py with the
    builder's own arguments (legacy builder, rm/forcerm, no pull) but no labels on the
    image, as a plain ``docker build -t``: the panel's labels are part of its cost."""

    def __init__(self, run_id: str) -> None:
        self.client = docker.from_env()
        self.run_id = run_id
        self.labels = {BENCH_LABEL: run_id}
        self.tags: list[str] = []

    def build(self, context: Path, tag: str) -> float:
        self.tags.append(tag)
        start = time.monotonic()
        for chunk in self.client.api.build(
            path=str(context),
            dockerfile="Dockerfile",
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                raise RuntimeError(f"docker build failed: {chunk['error']}")
        return time.monotonic() - start

    def run(self, tag: str) -> tuple[Any, int, float]:
        """Start a container publishing 8000 on a free loopback port; wait for /health."""
        port = free_port()
        start = time.monotonic()
        container = self.client.containers.run(
            tag,
            detach=True,
            labels=self.labels,
            ports={"8000/tcp": ("127.0.0.1", port)},
        )
        wait_for("the floor's container", answers(f"http://127.0.0.1:{port}/health"))
        return container, port, time.monotonic() - start

    def remove(self, container: Any) -> float:
        """As the panel retires an old instance: SIGTERM (the app exits on it), remove."""
        start = time.monotonic()
        container.stop(timeout=2)
        container.remove(force=True, v=True)
        return time.monotonic() - start

    def once(self, work: Path, iteration: int) -> dict[str, float]:
        nonce = f"floor-{self.run_id}-{iteration}"
        context = work / f"floor-{iteration}"
        write_app(context, nonce, revision=0)
        tag1 = f"gakwaya-bench/python-web:{self.run_id}-{iteration}-cold"
        build_cold = self.build(context, tag1)
        first, _, run_cold = self.run(tag1)
        write_app(context, nonce, revision=1)
        tag2 = f"gakwaya-bench/python-web:{self.run_id}-{iteration}-warm"
        build_warm = self.build(context, tag2)
        second, port2, run_warm = self.run(tag2)
        remove_old = self.remove(first)
        assert "rev1" in get_text(f"http://127.0.0.1:{port2}/")[1]
        self.remove(second)
        for tag in (tag2, tag1):
            self.client.images.remove(tag, force=True)
        return {
            "cold_s": build_cold + run_cold,
            "cold_build_s": build_cold,
            "cold_run_to_healthy_s": run_cold,
            "warm_s": build_warm + run_warm + remove_old,
            # Until the new release serves, as the issue defines the floor (docker build
            # + docker run + first healthy response): the old one is still there.
            "warm_serving_s": build_warm + run_warm,
            "warm_build_s": build_warm,
            "warm_run_to_healthy_s": run_warm,
            "warm_remove_old_s": remove_old,
        }

    def cleanup(self) -> None:
        for container in self.client.containers.list(
            all=True, filters={"label": f"{BENCH_LABEL}={self.run_id}"}, ignore_removed=True
        ):
            container.remove(force=True, v=True)
        for tag in self.tags:
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(tag, force=True)


# The panel --------------------------------------------------------------------------------

#: Markers in a deployment's log, in order: the time between two is a phase.
PHASES = (
    ("fetch", re.compile(r"^fetching ")),
    ("build", re.compile(r"^building ")),
    ("release", re.compile(r"^built ")),
    ("start_and_health_check", re.compile(r"^starting \d+ instance")),
    ("switch", re.compile(r"^\d+ instance\(s\) healthy")),
    ("stop_old", re.compile(r"^traffic switched")),
)


class Panel:
    def __init__(self, client: TestClient[Any], kernel: Kernel, headers: dict[str, str]) -> None:
        self.client = client
        self.kernel = kernel
        self.headers = headers
        self.api = "/api/v1/orgs/bench"
        self.engine = docker.from_env()
        url = kernel.settings.database_url
        assert url.startswith("sqlite:///"), url
        #: Read-only, for :meth:`wait_deployment`.
        self.rows = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        r = self.client.request(method, f"{self.api}{path}", headers=self.headers, **kwargs)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()

    def wait_deployment(self, deployment_id: int) -> str:
        """Wait on the deployment's row, not on the API: a client polling the
        deployment (and its whole log) 50 times a second would take CPU from the job
        it measures, on two cores. For the same reason the row is read on a plain
        read-only SQLite connection: a read through the kernel's SQLAlchemy session
        costs 0.7 ms of CPU under the GIL the job shares (0.01 ms this way), about
        0.04 s of a one-second deployment at 50 reads a second."""
        deadline = time.monotonic() + 300
        while True:
            row = self.rows.execute(
                "SELECT state FROM deployments WHERE id = ?", (deployment_id,)
            ).fetchone()
            state = row[0] if row else None
            if state in FINISHED:
                return str(state)
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment still {state}")
            time.sleep(POLL)

    def timed_deployment(
        self,
        start_request: Callable[[], dict[str, Any]],
        port: int,
        expect: str,
        old: Sequence[str] = (),
    ) -> tuple[float, dict[str, Any], dict[str, Any]]:
        """Seconds from the request until the deployment has ended and the app's port
        serves ``expect``; then the deployment as the API shows it, which must have
        succeeded (read after the clock stops: the floor has no such report either).

        The third value describes the ``old`` containers (the previous release's):
        whether they were still there when the deployment had succeeded (a pipeline
        that retires them after the switch, once a drain period is over) and when they
        were gone, counted from the same request."""
        start = time.monotonic()
        deployment = start_request()
        if self.wait_deployment(int(deployment["id"])) == "succeeded":
            url = f"http://127.0.0.1:{port}/"
            wait_for(f"port {port} to serve {expect!r}", answers(url, expect))
        took = time.monotonic() - start
        retired: dict[str, Any] = {"left_after_success": bool(old) and self.exist(old)}
        wait_for("the old instances to be removed", lambda: not self.exist(old))
        retired["removed_s"] = time.monotonic() - start
        body: dict[str, Any] = self.call("GET", f"/deployments/{deployment['id']}", 200)
        if body["state"] != "succeeded":
            raise RuntimeError(f"deployment {body['state']}: {body['logs'][-15:]}")
        return took, body, retired

    def containers_of(self, app_id: int) -> list[str]:
        label = f"{keys.APP_LABEL}={keys.app_key(self.kernel.installation_id, app_id)}"
        return [
            c.id
            for c in self.engine.containers.list(
                all=True, filters={"label": label}, ignore_removed=True
            )
        ]

    def exist(self, ids: Sequence[str]) -> bool:
        for cid in ids:
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.containers.get(cid)
                return True
        return False

    def phases(self, deployment_id: int) -> dict[str, float]:
        """Seconds of each phase, from the deployment's row and its job's log times."""
        with self.kernel.db.session() as db:
            deployment = db.get(Deployment, deployment_id)
            assert deployment is not None and deployment.job_id is not None
            logs = db.execute(
                select(JobLog.created_at, JobLog.line)
                .where(JobLog.job_id == deployment.job_id)
                .order_by(JobLog.id)
            ).all()
            created, started, finished = (
                deployment.created_at,
                deployment.started_at,
                deployment.finished_at,
            )
        marks: list[tuple[str, dt.datetime]] = []
        if started is not None:
            marks.append(("queued", created))
            marks.append(("prepare", started))
        for name, pattern in PHASES:
            hit = next((at for at, line in logs if pattern.search(line)), None)
            if hit is not None:
                marks.append((name, hit))
        out: dict[str, float] = {}
        assert finished is not None
        ends = [at for _, at in marks[1:]] + [finished]
        for (name, at), end in zip(marks, ends, strict=True):
            out[name] = round((end - at).total_seconds(), 3)
        out["log_lines"] = len(logs)
        return out

    def timed_call(self, path: str, body: Any = None) -> float:
        start = time.monotonic()
        self.call("POST", path, 200, json=body)
        return time.monotonic() - start

    def once(self, git_server: HTTPS, work: Path, iteration: int, health: dict[str, Any]) -> Any:
        run = f"web{iteration}"
        tree = work / f"{run}-tree"
        nonce = f"panel-{uuid.uuid4().hex[:12]}"
        write_app(tree, nonce, revision=0)
        bare = git_server.server.root / f"{run}.git"
        bare_repo(tree, bare)

        app = self.call(
            "POST",
            "/apps",
            201,
            json={
                "project": "shop",
                "environment": "production",
                "name": run,
                "git_url": git_server.url(f"{run}.git"),
                "git_credentials": {"https_token": GIT_TOKEN},
                "git_ref": "main",
                "port": 8000,
                "health": health,
            },
        )
        app_id, port = int(app["id"]), int(app["host_port"])
        result: dict[str, Any] = {"health_check": app["health"]}

        result["first_deploy_s"], first, _ = self.timed_deployment(
            lambda: self.call("POST", f"/apps/{app_id}/deployments", 202),
            port,
            "python-web release=v1",
        )
        result["first_deploy_phases"] = self.phases(int(first["id"]))

        # A commit changing app code only: every layer before COPY comes from the cache.
        write_app(tree, nonce, revision=1)
        push_tree(bare, tree, message="change the greeting")
        result["redeploy_s"], second, retired = self.timed_deployment(
            lambda: self.call("POST", f"/apps/{app_id}/deployments", 202),
            port,
            "python-web rev1 release=v2",
            old=self.containers_of(app_id),
        )
        result["redeploy_until_old_removed_s"] = retired["removed_s"]
        result["old_left_after_success"] = retired["left_after_success"]
        result["redeploy_phases"] = self.phases(int(second["id"]))

        # Waits (off the clock) for the old instance too: the lifecycle operations
        # below must act on the new release alone.
        result["rollback_s"], back, _ = self.timed_deployment(
            lambda: self.call("POST", f"/releases/{first['release_id']}/rollback", 202),
            port,
            "python-web release=v1",
            old=self.containers_of(app_id),
        )
        result["rollback_phases"] = self.phases(int(back["id"]))

        url = f"http://127.0.0.1:{port}/"
        start = time.monotonic()
        result["restart_request_s"] = self.timed_call(f"/apps/{app_id}/restart")
        wait_for("the app after restart", answers(url, "release=v1"))
        result["restart_until_serving_s"] = time.monotonic() - start

        result["stop_request_s"] = self.timed_call(f"/apps/{app_id}/stop")
        assert not answers(url)()
        start = time.monotonic()
        result["start_request_s"] = self.timed_call(f"/apps/{app_id}/start")
        wait_for("the app after start", answers(url, "release=v1"))
        result["start_until_serving_s"] = time.monotonic() - start

        result["scale_up_1_to_2_request_s"] = self.timed_call(
            f"/apps/{app_id}/scale", {"replicas": 2}
        )
        result["scale_down_2_to_1_request_s"] = self.timed_call(
            f"/apps/{app_id}/scale", {"replicas": 1}
        )
        assert answers(url, "release=v1")()
        return result

    def cleanup(self) -> None:
        """Everything this installation made: containers, images, networks."""
        self.rows.close()
        remove_installation(self.kernel.installation_id)


@contextlib.contextmanager
def panel(data: Path, ca: CA) -> Iterator[Panel]:
    settings = Settings(
        data_dir=str(data / "data"),
        database_url=f"sqlite:///{data / 'gakwaya.db'}",
        secret_key=Fernet.generate_key().decode(),
        log_level="warning",
    )
    kernel = Kernel.create(settings)
    try:
        kernel.migrate()
        admin = create_user(kernel, "root@bench.example.com", superuser=True)
        org = create_org(kernel, "bench")
        with kernel.db.transaction() as db:
            # Trust the bench's CA for git; serve apps on loopback only.
            plugin_settings.update(
                kernel, db, "gakwaya-git", {"ca_bundle": str(ca.cert)}, by="bench"
            )
            plugin_settings.update(
                kernel, db, "gakwaya-portproxy", {"bind_address": "127.0.0.1"}, by="bench"
            )
        del admin
        with TestClient(create_app(kernel)) as client:
            p = Panel(client, kernel, org.sessions["owner"])
            try:
                p.call("POST", "/projects", 201, json={"name": "shop"})
                yield p
            finally:
                p.cleanup()
    finally:
        kernel.close()


# Main ----------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float:
    return round(a / b, 2)


def median_of(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return summary([float(r[key]) for r in runs])


def median_phases(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    names = runs[0][key].keys()
    return {n: round(statistics.median(float(r[key][n]) for r in runs), 3) for n in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of everything (default 3)")
    parser.add_argument(
        "--health-interval",
        type=float,
        default=None,
        help="the app's health check interval in seconds (default: the API's default)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    load_before = round(os.getloadavg()[0], 2)
    ensure_engine()
    ensure_base_image()
    engine = docker.from_env()
    run_id = uuid.uuid4().hex[:8]
    health: dict[str, Any] = {"kind": "http", "path": "/health"}
    if args.health_interval is not None:
        health["interval"] = args.health_interval

    floor_runs: list[dict[str, float]] = []
    panel_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gakwaya-bench-deploy-") as tmp:
        work = Path(tmp)
        (work / "srv").mkdir()
        floor = Floor(run_id)
        ca = make_ca(work / "ca", "gakwaya bench CA")
        try:
            with (
                https_git_server(work / "srv", ca, {TOKEN_USER: GIT_TOKEN}) as git_server,
                panel(work, ca) as p,
            ):
                # Floor and panel take turns, so a change of load on the machine
                # (other work on the engine) falls on both.
                for i in range(args.repeats):
                    floor_runs.append(floor.once(work, i))
                    panel_runs.append(p.once(git_server, work, i, health))
                drain = p.kernel.settings.deploy_drain_seconds
        finally:
            floor.cleanup()

    floor_out = {k: median_of(floor_runs, k) for k in floor_runs[0]}
    timed = [k for k, v in panel_runs[0].items() if isinstance(v, float)]
    panel_out: dict[str, Any] = {k: median_of(panel_runs, k) for k in timed}
    phases = {
        k.removesuffix("_phases"): median_phases(panel_runs, k)
        for k in panel_runs[0]
        if k.endswith("_phases")
    }
    first = panel_out["first_deploy_s"]["median_s"]
    redeploy = panel_out["redeploy_s"]["median_s"]
    cold = floor_out["cold_s"]["median_s"]
    warm = floor_out["warm_s"]["median_s"]
    warm_serving = floor_out["warm_serving_s"]["median_s"]
    # Like for like: when the panel retires the old release after the deployment has
    # succeeded (after its drain period), the redeploy measured above does not hold
    # that removal, so neither may the floor it is compared with.
    retired_after = any(r["old_left_after_success"] for r in panel_runs)
    basis = warm_serving if retired_after else warm
    basis_name = "warm_serving_s" if retired_after else "warm_s"
    lifecycle = {
        k: panel_out[k]["median_s"]
        for k in (
            "restart_request_s",
            "stop_request_s",
            "start_request_s",
            "scale_up_1_to_2_request_s",
            "scale_down_2_to_1_request_s",
        )
    }
    results = {
        "benchmark": "deploy",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "os": platform.freedesktop_os_release().get("PRETTY_NAME", platform.platform()),
            "docker": engine.version().get("Version"),
            "python": platform.python_version(),
        },
        "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "repeats": args.repeats,
        "app": "tests/fixtures/apps/python-web",
        "base_image": BASE_ALIAS,
        "panel_config": {
            "health_check": panel_runs[0]["health_check"],
            "deploy_drain_seconds": drain,
            "poll_interval_of_this_bench_s": POLL,
            # git http-backend behind the bench's HTTPS server (keep-alive from 1.1).
            "git_server_protocol": GitHTTPHandler.protocol_version,
        },
        "floor": floor_out,
        "panel": panel_out,
        "panel_phases_median_s": phases,
        "ratios": {
            "first_deploy_vs_cold_floor": ratio(first, cold),
            "redeploy_vs_warm_floor": ratio(redeploy, warm),
            "redeploy_vs_warm_floor_serving": ratio(redeploy, warm_serving),
        },
        "targets": {
            "redeploy_at_most_1.3x_warm_floor": {
                "old_release_retired_after_success": retired_after,
                "floor": basis_name,
                "measured_ratio": ratio(redeploy, basis),
                "met": redeploy <= REDEPLOY_MAX_RATIO * basis,
            },
            "rollback_under_5_s": {
                "measured_s": panel_out["rollback_s"]["median_s"],
                "met": panel_out["rollback_s"]["median_s"] < ROLLBACK_MAX_S,
            },
            "lifecycle_operations_under_1_s": {
                "measured_s": lifecycle,
                "met": {k: v < LIFECYCLE_MAX_S for k, v in lifecycle.items()},
            },
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
