"""Shared by the pipeline tests: fixture app images, apps in the database, waiting for
deployments, reading what an app's host port serves."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, AppEnvVar, Environment, Organization, Project
from gakwaya.kernel import Kernel
from gakwaya.testing.docker import remove_installation
from tests.services import free_port

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
API = "/api/v1/orgs/acme"
FINISHED = ("succeeded", "failed", "cancelled", "superseded")


def make_app(kernel: Kernel, org: Organization, name: str = "web", **values: Any) -> int:
    """An app row (the API's own tests cover creating one through the API)."""
    with kernel.db.transaction() as db:
        project = db.query(Project).filter_by(org_id=org.id, name="shop").one_or_none()
        if project is None:
            project = Project(org_id=org.id, name="shop")
            db.add(project)
            db.flush()
            env = Environment(org_id=org.id, project_id=project.id, name="production")
            db.add(env)
            db.flush()
        else:
            env = db.query(Environment).filter_by(project_id=project.id).one()
        defaults: dict[str, Any] = {
            "port": 8000,
            "health_kind": "http",
            "health_path": "/health",
            "health_interval": 0.5,
            "health_timeout": 2.0,
            "health_retries": 20,
            "host_port": free_port(),
        }
        defaults.update(values)
        app = App(org_id=org.id, environment_id=env.id, name=name, **defaults)
        db.add(app)
        db.flush()
        return int(app.id)


def set_env(kernel: Kernel, app_id: int, key: str, value: str, *, secret: bool = False) -> None:
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        assert app is not None
        row = db.query(AppEnvVar).filter_by(app_id=app_id, key=key).one_or_none()
        if row is None:
            row = AppEnvVar(org_id=app.org_id, app_id=app_id, key=key, ciphertext="")
            db.add(row)
        row.ciphertext = kernel.box.encrypt(value)
        row.secret = secret
        row.updated_at = utcnow()


def wait_deployment(
    client: Any, headers: dict[str, str], deployment_id: int, timeout: float = 240
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{API}/deployments/{deployment_id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["state"] in FINISHED:
            return body
        assert time.monotonic() < deadline, f"deployment still {body['state']}: {body['logs'][-5:]}"
        time.sleep(0.3)


def deploy(client: Any, headers: dict[str, str], app_id: int, **body: Any) -> Any:
    r = client.post(f"{API}/apps/{app_id}/deployments", json=body or None, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()


def fetch(port: int, path: str = "/", timeout: float = 5) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        return str(resp.read().decode())


def serving(port: int, expect: str, timeout: float = 30) -> str:
    """Wait until the app's port answers with ``expect`` in the body; return the body."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            last = fetch(port)
            if expect in last:
                return last
        except (OSError, urllib.error.URLError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"port {port} never served {expect!r}; last answer: {last}")


def succeeded(body: Any) -> Any:
    """Assert a finished deployment succeeded, showing its error and log if not."""
    assert body["state"] == "succeeded", (body["state"], body["error"], body["logs"][-15:])
    return body


def clean_engine(installation_id: str) -> None:
    """Remove every container, network and image one test kernel made, so tests
    sharing the engine never see each other's and its address pools do not fill up."""
    remove_installation(installation_id)


def image_tags() -> list[tuple[str, list[str]]]:
    """``(id, tags)`` of every image, in one engine call: ``images.list()`` inspects
    each image afterwards, and fails when a parallel test removed one in between."""
    return [(i["Id"], list(i.get("RepoTags") or [])) for i in docker.from_env().api.images()]


def only_release(kernel: Kernel, app_id: int, release_id: int, timeout: float = 30) -> list[Any]:
    """Wait until the app's instances are all of ``release_id`` (after a switch, the
    deployment's job stops the old ones once they drained); return them."""
    from gakwaya.deploy import keys
    from gakwaya.deploy.runtime import our_instances

    deadline = time.monotonic() + timeout
    while True:
        instances = our_instances(kernel, app_id)
        if {i.release for i in instances} == {keys.release_key(release_id)}:
            return instances
        assert time.monotonic() < deadline, [(i.release, i.state) for i in instances]
        time.sleep(0.1)


@contextlib.contextmanager
def fixture_image(name: str, tag: str) -> Iterator[str]:
    """The fixture app ``tests/fixtures/apps/<name>`` built as ``tag``; removed after."""
    client = docker.from_env()
    client.images.build(path=str(APPS / name), tag=tag, rm=True, pull=False)
    try:
        yield tag
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(tag, force=True)
