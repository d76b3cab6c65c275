"""After the switch, the previous release's instances drain: no longer routed, still
running for ``deploy_drain_seconds`` (the requests they hold finish), then stopped. The
deployment has succeeded by then, and the reconciler leaves draining instances alone."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gakwaya.db.models import App, Deployment, Job
from gakwaya.deploy import keys
from gakwaya.deploy.reconciler import reconcile
from gakwaya.deploy.runtime import desired_routes, generation, our_instances
from gakwaya.kernel import Kernel
from tests.deploy.pipeline_helpers import (
    API,
    clean_engine,
    deploy,
    fetch,
    fixture_image,
    make_app,
    serving,
    set_env,
    succeeded,
    wait_deployment,
)

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")
RUN = uuid.uuid4().hex[:8]
DRAIN = 20  # long enough for a rollback to finish while the old instance drains, under load


@pytest.fixture(scope="module")
def image(gakwaya_base_image: str) -> Iterator[str]:
    with fixture_image("python-web", f"gakwaya-test/python-web:drain-{RUN}") as tag:
        yield tag


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"deploy_drain_seconds": DRAIN, "reconcile_interval": 3600}


def job_state(kernel: Kernel, deployment_id: int) -> str:
    with kernel.db.session() as db:
        return str(
            db.scalar(
                select(Job.state)
                .join(Deployment, Deployment.job_id == Job.id)
                .where(Deployment.id == deployment_id)
            )
        )


def test_old_instances_drain_unrouted_then_stop(
    kernel: Kernel, client: Any, world: Any, image: str
) -> None:
    owner = dict(world.a.sessions["owner"])
    app_id = make_app(kernel, world.a.org, source_type="image", image=image)
    try:
        first = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
        set_env(kernel, app_id, "GREETING", "drained")
        second = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))

        # Succeeded, routed to v2, while v1's instance still runs (draining).
        with kernel.db.session() as db:
            host_port = db.get(App, app_id).host_port  # type: ignore[union-attr]
        assert host_port is not None
        serving(host_port, "release=v2 greeting=drained")
        assert job_state(kernel, second["id"]) == "running"
        old_release = keys.release_key(first["release_id"])
        draining = [i for i in our_instances(kernel, app_id) if i.release == old_release]
        assert [i.state for i in draining] == ["running"]
        assert "release=v2" in fetch(host_port)

        # The reconciler leaves it alone while the deployment's job drains it.
        reconcile(kernel)
        assert [i.id for i in our_instances(kernel, app_id) if i.release == old_release] == [
            draining[0].id
        ]

        # Then the job stops and removes it.
        deadline = time.monotonic() + DRAIN + 30
        while job_state(kernel, second["id"]) != "succeeded":
            assert time.monotonic() < deadline, job_state(kernel, second["id"])
            time.sleep(0.2)
        assert [i.release for i in our_instances(kernel, app_id)] == [
            keys.release_key(second["release_id"])
        ]
        logs = client.get(f"/api/v1/orgs/acme/deployments/{second['id']}", headers=owner).json()[
            "logs"
        ]
        assert any(f"draining 1 old instance(s) for {DRAIN}s" in line for line in logs), logs
    finally:
        clean_engine(kernel.installation_id)


def test_a_rollback_while_the_release_drains_routes_only_its_new_instances(
    kernel: Kernel, client: Any, world: Any, image: str
) -> None:
    """Rolled back to the release just replaced, whose instance still drains: the
    rollback starts a new one, and only that one is routed (the draining one is about
    to get SIGTERM)."""
    owner = dict(world.a.sessions["owner"])
    app_id = make_app(kernel, world.a.org, source_type="image", image=image)
    try:
        first = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
        set_env(kernel, app_id, "GREETING", "second")
        succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
        r = client.post(f"{API}/releases/{first['release_id']}/rollback", headers=owner)
        assert r.status_code == 202, r.text
        back = succeeded(wait_deployment(client, owner, r.json()["id"]))
        v1 = keys.release_key(first["release_id"])
        of_v1 = [i for i in our_instances(kernel, app_id) if i.release == v1]
        # Still draining from the second deployment: the first instance, and the new one.
        assert {generation(i) for i in of_v1} == {first["id"], back["id"]}
        (route,) = [
            route
            for route in desired_routes(kernel, our_instances(kernel))
            if route.app == keys.app_key(kernel.installation_id, app_id)
        ]
        assert route.upstreams == [i.address for i in of_v1 if generation(i) == back["id"]]
    finally:
        clean_engine(kernel.installation_id)
