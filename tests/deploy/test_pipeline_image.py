"""The pipeline on a real Docker engine with prebuilt images: deploy, redeploy with new
configuration, rollback, failures that keep the previous release serving, cancel,
lifecycle, the reconciler. (Builds from git are in test_pipeline_git.py.)"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from sqlalchemy import select

from gakwaya.db.models import App, Deployment, Release
from gakwaya.deploy import keys
from gakwaya.deploy.reconciler import reconcile
from gakwaya.deploy.runtime import our_instances
from gakwaya.kernel import Kernel
from tests.deploy.pipeline_helpers import (
    API,
    APPS,
    clean_engine,
    deploy,
    fetch,
    make_app,
    only_release,
    serving,
    set_env,
    succeeded,
    wait_deployment,
)

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def images(gakwaya_base_image: str) -> Iterator[dict[str, str]]:
    """The fixture apps built once for this module, tagged for it alone."""
    client = docker.from_env()
    built: dict[str, str] = {}
    for name in ("python-web", "crash", "unhealthy"):
        tag = f"gakwaya-test/{name}:{RUN}"
        client.images.build(path=str(APPS / name), tag=tag, rm=True, pull=False)
        built[name] = tag
    yield built
    for tag in built.values():
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(tag, force=True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"deploy_drain_seconds": 0, "reconcile_interval": 3600}


@pytest.fixture
def owner(world: Any) -> dict[str, str]:
    return dict(world.a.sessions["owner"])


@pytest.fixture(autouse=True)
def _cleanup(kernel: Kernel) -> Iterator[None]:
    yield
    clean_engine(kernel.installation_id)


def _image_app(kernel: Kernel, world: Any, image: str, **values: Any) -> tuple[int, int]:
    app_id = make_app(kernel, world.a.org, source_type="image", image=image, **values)
    with kernel.db.session() as db:
        app = db.get(App, app_id)
        assert app is not None and app.host_port is not None
        return app_id, app.host_port


def test_deploy_redeploy_and_rollback(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, port = _image_app(kernel, world, images["python-web"])
    first = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert first["state"] == "succeeded", first["logs"]
    assert "release=v1 greeting=hello" in serving(port, "release=v1")

    set_env(kernel, app_id, "GREETING", "bonjour")
    second = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert second["state"] == "succeeded", second["logs"]
    assert "release=v2 greeting=bonjour" in serving(port, "release=v2")
    # The old release's instances are gone once traffic switched (and they drained).
    only_release(kernel, app_id, second["release_id"])

    releases = client.get(f"{API}/apps/{app_id}/releases", headers=owner).json()["items"]
    assert [r["number"] for r in releases] == [2, 1]
    assert releases[0]["current"] and releases[0]["env_keys"] == ["GREETING"]
    r = client.post(f"{API}/releases/{first['release_id']}/rollback", headers=owner)
    assert r.status_code == 202, r.text
    back = wait_deployment(client, owner, r.json()["id"])
    assert back["state"] == "succeeded" and back["kind"] == "rollback"
    # Its own image and configuration: no GREETING in release 1.
    assert "release=v1 greeting=hello" in serving(port, "release=v1")
    with kernel.db.session() as db:
        app = db.get(App, app_id)
        assert app is not None and app.current_release_id == first["release_id"]


def test_crash_on_start_keeps_the_previous_release(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, port = _image_app(kernel, world, images["python-web"])
    ok = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert ok["state"] == "succeeded", ok["logs"]
    serving(port, "release=v1")
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        assert app is not None
        app.image = images["crash"]
    failed = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert failed["state"] == "failed"
    assert "code 3" in (failed["error"] or "") or "exited" in (failed["error"] or "")
    assert "release=v1" in fetch(port)
    with kernel.db.session() as db:
        assert db.get(App, app_id).current_release_id == ok["release_id"]  # type: ignore[union-attr]
        # The failed attempt's release row is gone; no instance of it remains.
        assert db.scalars(select(Release.id).where(Release.app_id == app_id)).all() == [
            ok["release_id"]
        ]
    assert {i.release for i in our_instances(kernel, app_id)} == {
        keys.release_key(ok["release_id"])
    }
    # The app can be deployed again at once.
    with kernel.db.transaction() as db:
        db.get(App, app_id).image = images["python-web"]  # type: ignore[union-attr]
    again = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert again["state"] == "succeeded", again["logs"]


def test_failing_health_check_and_cancel_keep_the_previous_release(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, port = _image_app(kernel, world, images["python-web"])
    succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        assert app is not None
        app.image = images["unhealthy"]
        app.health_retries = 3
    failed = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert failed["state"] == "failed" and "health" in (failed["error"] or "")
    assert "release=v1" in fetch(port)

    # A health check that would take long: cancel it while it runs.
    with kernel.db.transaction() as db:
        db.get(App, app_id).health_retries = 200  # type: ignore[union-attr]
    slow = deploy(client, owner, app_id)
    deadline = time.monotonic() + 60
    while client.get(f"{API}/deployments/{slow['id']}", headers=owner).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    r = client.post(f"{API}/deployments/{slow['id']}/cancel", headers=owner)
    assert r.status_code == 200, r.text
    done = wait_deployment(client, owner, slow["id"])
    assert done["state"] == "cancelled", done
    assert "release=v1" in fetch(port)
    assert len(our_instances(kernel, app_id)) == 1


def test_newer_request_supersedes_queued_ones(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, _port = _image_app(kernel, world, images["python-web"])
    ids = [deploy(client, owner, app_id)["id"] for _ in range(3)]
    states = [wait_deployment(client, owner, i)["state"] for i in ids]
    # Whatever had started finishes; the queued ones in between are superseded; the
    # newest always runs.
    assert states[-1] == "succeeded"
    assert "superseded" in states[:-1] or states[:-1].count("succeeded") >= 1
    queue = client.get(f"{API}/apps/{app_id}/deployments", headers=owner).json()["items"]
    assert [d["id"] for d in queue] == ids[::-1]


def test_lifecycle_stop_start_restart_scale(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, port = _image_app(kernel, world, images["python-web"])
    succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    serving(port, "release=v1")
    r = client.post(f"{API}/apps/{app_id}/stop", headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["desired_state"] == "stopped"
    assert all(i["state"] == "exited" for i in r.json()["instances"])
    r = client.post(f"{API}/apps/{app_id}/start", headers=owner)
    assert r.status_code == 200, r.text
    assert [i["state"] for i in r.json()["instances"]] == ["running"]
    serving(port, "release=v1")
    r = client.post(f"{API}/apps/{app_id}/restart", headers=owner)
    assert r.status_code == 200, r.text
    serving(port, "release=v1")
    r = client.post(f"{API}/apps/{app_id}/scale", json={"replicas": 3}, headers=owner)
    assert r.status_code == 200, r.text
    assert len([i for i in r.json()["instances"] if i["state"] == "running"]) == 3
    r = client.post(f"{API}/apps/{app_id}/scale", json={"replicas": 1}, headers=owner)
    assert len(r.json()["instances"]) == 1
    serving(port, "release=v1")
    logs = client.get(f"{API}/apps/{app_id}/logs?tail=50", headers=owner).json()["lines"]
    assert any("python-web listening" in line for line in logs)
    stats = client.get(f"{API}/apps/{app_id}/stats", headers=owner).json()
    assert len(stats) == 1 and stats[0]["memory_bytes"] > 0
    r = client.post(f"{API}/apps/{app_id}/scale", json={"replicas": 11}, headers=owner)
    assert r.status_code in (400, 422) and "replicas" in r.text


def test_reconciler_restarts_crashed_and_removes_orphans(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, port = _image_app(kernel, world, images["python-web"], restart_policy="no")
    succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    engine = docker.from_env()
    (instance,) = our_instances(kernel, app_id)
    engine.containers.get(instance.id).kill()
    # An orphan: labelled as ours, of an app that does not exist.
    orphan = engine.containers.run(
        images["python-web"],
        detach=True,
        labels={
            keys.MANAGED_LABEL: keys.MANAGED_VALUE,
            keys.INSTALLATION_LABEL: kernel.installation_id,
            keys.APP_LABEL: keys.app_key(kernel.installation_id, 999999),
            keys.RELEASE_LABEL: "r1",
        },
    )
    report = reconcile(kernel)
    assert any("crashed" in a for a in report.actions), report
    assert any("deleted apps" in d for d in report.drift), report
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(orphan.id)
    serving(port, "release=v1")
    # A deployment left "running" by a dead worker is finished by the reconciler.
    with kernel.db.transaction() as db:
        db.add(Deployment(org_id=world.a.org.id, app_id=app_id, number=99, state="running"))
    report = reconcile(kernel)
    with kernel.db.session() as db:
        stuck = db.scalars(select(Deployment).where(Deployment.number == 99)).one()
        assert stuck.state == "failed" and stuck.error


def test_other_org_gets_404(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, _port = _image_app(kernel, world, images["python-web"])
    other = world.b.sessions["owner"]
    dep = deploy(client, owner, app_id)
    for method, path in [
        ("post", f"/api/v1/orgs/globex/apps/{app_id}/deployments"),
        ("get", f"/api/v1/orgs/globex/apps/{app_id}/deployments"),
        ("get", f"/api/v1/orgs/globex/deployments/{dep['id']}"),
        ("post", f"/api/v1/orgs/globex/deployments/{dep['id']}/cancel"),
        ("get", f"/api/v1/orgs/globex/apps/{app_id}/status"),
        ("post", f"/api/v1/orgs/globex/apps/{app_id}/stop"),
        ("get", f"/api/v1/orgs/globex/apps/{app_id}/logs"),
    ]:
        r = getattr(client, method)(path, headers=other)
        assert r.status_code == 404, (path, r.text)
    wait_deployment(client, owner, dep["id"])


def test_deleting_an_app_tears_down_its_containers_and_route(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], images: dict[str, str]
) -> None:
    app_id, port = _image_app(kernel, world, images["python-web"])
    succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    serving(port, "release=v1")
    r = client.delete(f"{API}/apps/{app_id}", headers=world.a.sessions["admin"])
    assert r.status_code in (200, 204), r.text
    deadline = time.monotonic() + 60
    while our_instances(kernel, app_id):
        assert time.monotonic() < deadline, "teardown left instances"
        time.sleep(0.3)
    with pytest.raises(OSError):
        while time.monotonic() < deadline:
            fetch(port, timeout=2)
            time.sleep(0.3)


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from gakwaya.testing.docker import registry
    from tests.services import free_port

    with registry(tmp_path_factory.mktemp("registry"), free_port()) as address:
        yield address


def test_an_image_from_a_registry_is_pulled_and_a_moved_tag_picked_up(
    kernel: Kernel,
    client: Any,
    world: Any,
    owner: dict[str, str],
    images: dict[str, str],
    local_registry: str,
    tmp_path: Any,
) -> None:
    engine = docker.from_env()
    ref = f"{local_registry}/acme/web:stable"
    engine.images.get(images["python-web"]).tag(ref)
    engine.images.push(ref)
    engine.images.remove(ref)  # the engine has no copy: the deployment must pull it
    app_id, port = _image_app(kernel, world, ref)
    first = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    assert any(f"pulled {ref}" in line for line in first["logs"]), first["logs"]
    serving(port, "greeting=hello")

    # The tag moves to new content; the next deployment pulls it again.
    (tmp_path / "Dockerfile").write_text(f"FROM {images['python-web']}\nENV GREETING=moved\n")
    engine.images.build(path=str(tmp_path), tag=ref, rm=True, pull=False)
    engine.images.push(ref)
    second = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    serving(port, "release=v2 greeting=moved")
    # The releases hold the two image ids: a rollback runs the first bytes again.
    with kernel.db.session() as db:
        ids = [r.image_id for r in db.scalars(select(Release).where(Release.app_id == app_id))]
    assert len(set(ids)) == 2 and all(i.startswith("sha256:") for i in ids)
    r = client.post(f"{API}/releases/{first['release_id']}/rollback", headers=owner)
    succeeded(wait_deployment(client, owner, r.json()["id"]))
    serving(port, "release=v1 greeting=hello")
    assert second["release_id"] != first["release_id"]

    # A reference the registry does not have: the deployment fails, v1 keeps serving.
    with kernel.db.transaction() as db:
        db.get(App, app_id).image = f"{local_registry}/acme/absent:1"  # type: ignore[union-attr]
    failed = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert failed["state"] == "failed" and "cannot pull" in (failed["error"] or ""), failed
    assert "release=v1" in fetch(port)
    with contextlib.suppress(docker.errors.APIError):
        engine.images.remove(ref, force=True)
