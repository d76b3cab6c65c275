"""Faults of the processes running the pipeline, on a real Docker engine and real
processes: a ``gakwaya worker`` SIGKILLed in the middle of a build, and a
``gakwaya serve`` (jobs in its own process) SIGKILLed mid-build and started again.

Each time: the deployment ends (failed, with a reason) instead of staying
queued/running, the previous release keeps serving, nothing of the killed attempt
is left in the engine, and the next deployment succeeds at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from sqlalchemy import select

from gakwaya.db.models import App, Deployment, Release
from gakwaya.deploy import keys
from gakwaya.deploy.reconciler import reconcile
from gakwaya.kernel import Kernel
from gakwaya.testing.gitserver import SSHD, KeyPair, bare_repo, git, make_key, sshd_server
from tests.deploy.pipeline_helpers import (
    API,
    APPS,
    FINISHED,
    clean_engine,
    deploy,
    fetch,
    image_tags,
    make_app,
    serving,
    succeeded,
    wait_deployment,
)
from tests.test_serve import panel_environment, serving as serve_panel

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")

ROOT = Path(__file__).resolve().parents[2]
#: Generous: a build step, a reaper and a reconciler pass, on a busy machine.
DEADLINE = 180.0


@dataclass
class Repo:
    sshd: SSHD
    key: KeyPair
    #: printed by the slow build step once it runs (the step's own line says "$((6*7))")
    running: str
    marker: str

    def url(self) -> str:
        return self.sshd.url("app.git")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    """python-web on ``main``; on ``slow``, the same with a build step that sleeps."""
    base = tmp_path_factory.mktemp("faultsrv")
    root = base / "srv"
    root.mkdir()
    marker = f"slow-{uuid.uuid4().hex[:12]}"
    bare_repo(APPS / "python-web", root / "app.git")
    work = root / "app.git.work"
    git("checkout", "--quiet", "-b", "slow", cwd=work)
    dockerfile = (work / "Dockerfile").read_text().splitlines()
    dockerfile.insert(1, f'RUN echo "$((6*7))-{marker}" && sleep 900')
    (work / "Dockerfile").write_text("\n".join(dockerfile) + "\n")
    git("commit", "--quiet", "-am", "a build step that takes long", cwd=work)
    git("push", "--quiet", "--", str(root / "app.git"), "HEAD:refs/heads/slow", cwd=work)
    key = make_key(base, "deploy_key")
    with sshd_server(root, base / "sshd", [key]) as sshd:
        yield Repo(sshd=sshd, key=key, running=f"42-{marker}", marker=marker)


def _git_app(kernel: Kernel, world: Any, repo: Repo) -> tuple[int, int]:
    app_id = make_app(
        kernel,
        world.a.org,
        source_type="git",
        git_url=repo.url(),
        git_ref="main",
        git_credentials=kernel.box.encrypt(json.dumps({"ssh_private_key": repo.key.private})),
    )
    with kernel.db.session() as db:
        app = db.get(App, app_id)
        assert app is not None and app.host_port is not None
        return app_id, app.host_port


def _build_containers(marker: str) -> list[Any]:
    """Containers of the slow build step (the engine's own, not labelled as ours)."""
    found = []
    # ignore_removed: the engine removes build containers while we list them, and
    # docker-py inspects each listed container (a 404 for one that just went).
    for c in docker.from_env().containers.list(all=True, ignore_removed=True):
        command = " ".join(c.attrs["Config"].get("Cmd") or [])
        if marker in command:
            found.append(c)
    return found


def _wait(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _leftovers(kernel: Kernel, deployment_id: int, marker: str) -> list[str]:
    """What the killed deployment left in the engine: build containers, images and
    instances labelled with it."""
    engine = docker.from_env()
    label = f"{keys.DEPLOYMENT_LABEL}={keys.deployment_key(deployment_id)}"
    mine = f"{keys.INSTALLATION_LABEL}={kernel.installation_id}"
    found = [f"build container {c.id[:12]}" for c in _build_containers(marker)]
    found += [
        f"container {c.id[:12]}"
        for c in engine.containers.list(
            all=True, filters={"label": [mine, label]}, ignore_removed=True
        )
    ]
    found += [
        f"image {image_id[:19]}"
        for image_id, tags in image_tags()
        if any(
            (keys.parse_image_tag(t, kernel.installation_id) or (0, 0))[1] == deployment_id
            for t in tags
        )
    ]
    return found


def _cleanup_engine(kernel: Kernel, marker: str) -> None:
    for c in _build_containers(marker):
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)
    clean_engine(kernel.installation_id)


# A worker killed mid-build --------------------------------------------------------------


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    values: dict[str, Any] = {"deploy_drain_seconds": 0, "reconcile_interval": 3600}
    if "redis_url" in request.fixturenames:
        values["redis_url"] = request.getfixturevalue("redis_url")
    return values


Worker = Callable[[], "subprocess.Popen[bytes]"]


@pytest.fixture
def start_worker(kernel: Kernel, redis_url: str, tmp_path: Path) -> Iterator[Worker]:
    """``gakwaya worker`` processes on the test's database and Redis (the test process
    plays the panel: it enqueues, reaps and reconciles)."""
    assert kernel.redis is not None and kernel.jobs.backend.name == "rq"
    kernel.redis.flushdb()
    settings = kernel.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env.update(
        GAKWAYA_DATABASE_URL=settings.database_url,
        GAKWAYA_REDIS_URL=settings.redis_url,
        GAKWAYA_DATA_DIR=settings.data_dir,
        GAKWAYA_SECRET_KEY=settings.secret_key,
        GAKWAYA_JOB_HEARTBEAT_INTERVAL=str(settings.job_heartbeat_interval),
        GAKWAYA_JOB_HEARTBEAT_TIMEOUT=str(settings.job_heartbeat_timeout),
        GAKWAYA_REAPER_INTERVAL=str(settings.reaper_interval),
        GAKWAYA_DEPLOY_DRAIN_SECONDS="0",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        out = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gakwaya"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    for path in sorted(tmp_path.glob("worker-*.log")):
        print(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")


@pytest.mark.redis
def test_worker_killed_mid_build(
    kernel: Kernel, client: Any, world: Any, repo: Repo, start_worker: Worker
) -> None:
    owner = dict(world.a.sessions["owner"])
    try:
        worker = start_worker()
        app_id, port = _git_app(kernel, world, repo)
        good = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
        serving(port, "release=v1")

        slow = deploy(client, owner, app_id, ref="slow")
        _wait(
            lambda: any(
                repo.running in line
                for line in client.get(f"{API}/deployments/{slow['id']}", headers=owner).json()[
                    "logs"
                ]
            ),
            "the slow build step to run",
        )
        assert _build_containers(repo.marker), "the build step runs in a container"
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)

        def ended() -> Any:
            kernel.jobs.reap()  # the panel's reaper and reconciler, one pass at a time
            reconcile(kernel)
            body = client.get(f"{API}/deployments/{slow['id']}", headers=owner).json()
            return body if body["state"] in FINISHED else None

        done = _wait(ended, "the killed deployment to end")
        assert done["state"] == "failed", done
        assert done["error"] and "died" in done["error"], done["error"]
        assert "release=v1" in fetch(port)
        with kernel.db.session() as db:
            assert db.get(App, app_id).current_release_id == good["release_id"]  # type: ignore[union-attr]
        # The engine aborted the build whose client vanished; the reconciler removed
        # whatever else the attempt left.
        _wait(
            lambda: (reconcile(kernel), not _leftovers(kernel, slow["id"], repo.marker))[1],
            "the killed build's leftovers to go",
        )
        with kernel.db.session() as db:
            assert db.scalars(select(Release.id).where(Release.app_id == app_id)).all() == [
                good["release_id"]
            ]

        start_worker()
        again = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
        assert "release=v2" in serving(port, "release=v2")
        assert again["commit"]
    finally:
        _cleanup_engine(kernel, repo.marker)


# The panel restarted during a deploy -------------------------------------------------------


def test_panel_killed_mid_build_and_restarted(
    kernel: Kernel, world: Any, repo: Repo, tmp_path: Path
) -> None:
    """``gakwaya serve`` runs the jobs itself (no Redis); killed mid-build, started
    again, it finishes the deployment within its reaper and reconciler intervals."""
    settings = kernel.settings
    env = panel_environment(
        Path(settings.data_dir),
        settings.database_url,
        GAKWAYA_DATABASE_URL=settings.database_url,
        GAKWAYA_SECRET_KEY=settings.secret_key,
        GAKWAYA_JOB_HEARTBEAT_INTERVAL="1",
        GAKWAYA_JOB_HEARTBEAT_TIMEOUT="5",
        GAKWAYA_REAPER_INTERVAL="1",
        GAKWAYA_RECONCILE_INTERVAL="2",
        GAKWAYA_DEPLOY_DRAIN_SECONDS="0",
    )
    owner = dict(world.a.sessions["owner"])
    app_id, port = _git_app(kernel, world, repo)

    def call(panel: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, panel.base + path, headers=owner, timeout=30, **kwargs)

    def wait_done(panel: Any, deployment_id: int) -> Any:
        def finished() -> Any:
            r = call(panel, "GET", f"{API}/deployments/{deployment_id}")
            assert r.status_code == 200, r.text
            body = r.json()
            return body if body["state"] in FINISHED else None

        return _wait(finished, f"deployment {deployment_id} to end")

    try:
        with serve_panel(tmp_path, env, "first") as panel:
            r = call(panel, "POST", f"{API}/apps/{app_id}/deployments")
            assert r.status_code == 202, r.text
            good = succeeded(wait_done(panel, r.json()["id"]))
            serving(port, "release=v1")
            r = call(panel, "POST", f"{API}/apps/{app_id}/deployments", json={"ref": "slow"})
            assert r.status_code == 202, r.text
            slow = r.json()
            _wait(
                lambda: any(
                    repo.running in line
                    for line in call(panel, "GET", f"{API}/deployments/{slow['id']}").json()["logs"]
                ),
                "the slow build step to run",
            )
            panel.proc.send_signal(signal.SIGKILL)
            panel.proc.wait(30)
        with kernel.db.session() as db:
            state = db.get(Deployment, slow["id"]).state  # type: ignore[union-attr]
        assert state == "running"  # what the dead panel left

        with serve_panel(tmp_path, env, "second") as panel:
            done = wait_done(panel, slow["id"])
            assert done["state"] == "failed", done
            assert done["error"], done
            # The restarted panel serves the previous release on the app's port again.
            assert "release=v1" in serving(port, "release=v1")
            with kernel.db.session() as db:
                assert db.get(App, app_id).current_release_id == good["release_id"]  # type: ignore[union-attr]
            _wait(
                lambda: not _leftovers(kernel, slow["id"], repo.marker),
                "the killed build's leftovers to go",
            )
            r = call(panel, "POST", f"{API}/apps/{app_id}/deployments")
            assert r.status_code == 202, r.text
            succeeded(wait_done(panel, r.json()["id"]))
            assert "release=v2" in serving(port, "release=v2")
            panel.stop()
    finally:
        _cleanup_engine(kernel, repo.marker)
