"""``gakwaya app deploy|rollback|start|stop|scale|status|logs|releases``, ``gakwaya
deployment`` and ``gakwaya reconcile`` against a real engine. The panel under test
(the ``client`` fixture) runs the jobs the CLI queues, as a serving panel would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gakwaya.cli import main
from gakwaya.db.models import AuditRecord
from gakwaya.kernel import Kernel
from tests.deploy.pipeline_helpers import APPS, clean_engine, make_app, serving

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def web_image(gakwaya_base_image: str) -> Iterator[str]:
    tag = f"gakwaya-test/python-web-cli:{RUN}"
    engine = docker.from_env()
    engine.images.build(path=str(APPS / "python-web"), tag=tag, rm=True, pull=False)
    yield tag
    engine.images.remove(tag, force=True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"deploy_drain_seconds": 0, "reconcile_interval": 3600}


@pytest.fixture(autouse=True)
def _cleanup(kernel: Kernel) -> Iterator[None]:
    yield
    clean_engine(kernel.installation_id)


@pytest.fixture
def cli(kernel: Kernel, client: Any) -> Any:
    s = kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
    }

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_deploy_rollback_and_lifecycle_from_the_cli(
    cli: Any, kernel: Kernel, world: Any, web_image: str
) -> None:
    app_id = make_app(kernel, world.a.org, source_type="image", image=web_image)
    with kernel.db.session() as db:
        from gakwaya.db.models import App

        port = db.get(App, app_id).host_port  # type: ignore[union-attr]
    assert port is not None
    r = cli("app", "deploy", "--org", "acme", "shop/production/web", "--wait")
    assert r.exit_code == 0, r.output
    assert "instance(s) healthy" in r.output and "deployment succeeded" in r.output
    serving(port, "release=v1")
    r = cli("app", "deploy", "--org", "acme", str(app_id), "--wait")
    assert r.exit_code == 0, r.output
    serving(port, "release=v2")

    r = cli("app", "releases", "--org", "acme", str(app_id))
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("* v2"), r.output
    r = cli("app", "rollback", "--org", "acme", str(app_id), "1", "--wait")
    assert r.exit_code == 0, r.output
    serving(port, "release=v1")
    r = cli("app", "deployments", "--org", "acme", str(app_id))
    assert [line.split("\t")[2] for line in r.output.splitlines()] == ["rollback", "image", "image"]

    r = cli("app", "stop", "--org", "acme", str(app_id))
    assert r.exit_code == 0 and "desired stopped" in r.output and "exited" in r.output, r.output
    r = cli("app", "start", "--org", "acme", str(app_id))
    assert r.exit_code == 0 and "running" in r.output, r.output
    r = cli("app", "scale", "--org", "acme", str(app_id), "2")
    assert r.exit_code == 0 and r.output.count("\trunning\t") == 2, r.output
    r = cli("app", "status", "--org", "acme", str(app_id))
    assert "2 replica(s)" in r.output
    r = cli("app", "logs", "--org", "acme", str(app_id), "--tail", "20")
    assert r.exit_code == 0 and "python-web listening" in r.output, r.output
    r = cli("reconcile")
    assert r.exit_code == 0, r.output
    serving(port, "release=v1")

    r = cli("deployment", "show", "--org", "acme", "1")
    assert r.exit_code == 0 and "succeeded" in r.output
    r = cli("deployment", "cancel", "--org", "acme", "1")
    assert r.exit_code == 1 and "already ended" in r.output
    r = cli("deployment", "show", "--org", "globex", "1")
    assert r.exit_code == 1 and "not found" in r.output

    with kernel.db.session() as db:
        actions = set(db.scalars(select(AuditRecord.action)))
    assert {"deployments_create", "releases_rollback", "apps_stop", "apps_scale"} <= actions


@pytest.mark.parametrize("ref", ["-x", "main;touch /tmp/x", "..", "$(touch x)", "a\nb"])
def test_deploy_refuses_bad_refs(cli: Any, kernel: Kernel, world: Any, ref: str) -> None:
    app_id = make_app(kernel, world.a.org, git_url="https://git.example.com/a/b.git")
    r = cli("app", "deploy", "--org", "acme", str(app_id), "--ref", ref)
    assert r.exit_code == 2 and "--ref" in r.output, r.output
