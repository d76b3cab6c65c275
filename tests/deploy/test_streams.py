"""Live streams against a real server: a deployment's log (SSE, ending with its state)
and an app's output (tail and follow), with secret values scrubbed from both."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from gakwaya.kernel import Kernel
from tests.deploy.pipeline_helpers import clean_engine, make_app, set_env
from tests.events.test_stream import Stream, live  # noqa: F401  (the live server fixture)

SECRET = "s3cr3t-" + uuid.uuid4().hex
PROGRAM = (
    "import os, time; print('token is ' + os.environ['API_TOKEN'], flush=True); time.sleep(1e5)"
)
DOCKERFILE = f"""FROM gakwaya-test/debian:bookworm
USER 65534
CMD ["python3", "-c", "{PROGRAM}"]
"""


@pytest.fixture(scope="module")
def echo_image(gakwaya_base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    context: Path = tmp_path_factory.mktemp("echo")
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = f"gakwaya-test/echo-secret:{uuid.uuid4().hex[:8]}"
    engine = docker.from_env()
    engine.images.build(path=str(context), tag=tag, rm=True, pull=False)
    yield tag
    with contextlib.suppress(docker.errors.APIError):
        engine.images.remove(tag, force=True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"deploy_drain_seconds": 0, "reconcile_interval": 3600}


@pytest.fixture(autouse=True)
def _cleanup(kernel: Kernel) -> Iterator[None]:
    yield
    clean_engine(kernel.installation_id)


@contextlib.contextmanager
def sse(base: str, path: str, headers: dict[str, str]) -> Iterator[Stream]:
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(60.0)) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def test_deployment_log_stream_and_scrubbed_app_logs(
    live: str,  # noqa: F811
    kernel: Kernel,
    world: Any,
    echo_image: str,
) -> None:
    owner = world.a.sessions["owner"]
    app_id = make_app(
        kernel, world.a.org, source_type="image", image=echo_image, health_kind="none"
    )
    set_env(kernel, app_id, "API_TOKEN", SECRET, secret=True)
    with httpx.Client(base_url=live, timeout=30) as http:
        r = http.post(f"/api/v1/orgs/acme/apps/{app_id}/deployments", headers=owner)
        assert r.status_code == 202, r.text
        deployment_id = r.json()["id"]

    lines: list[str] = []
    with sse(live, f"/api/v1/orgs/acme/deployments/{deployment_id}/logs", owner) as stream:
        while True:
            msg = stream.message()
            if msg.get("event") == "end":
                final = msg["data"]
                break
            if msg.get("event") == "log":
                lines.append(msg["data"])
    assert final == "succeeded", lines
    assert any("instance(s) healthy" in line for line in lines), lines
    assert not any(SECRET in line for line in lines)

    with httpx.Client(base_url=live, timeout=30) as http:
        deadline = time.monotonic() + 30
        while True:
            r = http.get(f"/api/v1/orgs/acme/apps/{app_id}/logs", headers=owner)
            assert r.status_code == 200, r.text
            if any("token is" in line for line in r.json()["lines"]):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        printed = [line for line in r.json()["lines"] if "token is" in line]
    assert printed and all(SECRET not in line and "***" in line for line in printed), printed

    path = f"/api/v1/orgs/acme/apps/{app_id}/logs/stream?tail=10"
    with sse(live, path, owner) as stream:
        while True:
            msg = stream.message()
            if msg.get("event") == "log" and "token is" in msg["data"]:
                assert SECRET not in msg["data"] and "***" in msg["data"]
                break

    # Another organization sees none of it.
    other = world.b.sessions["owner"]
    with httpx.Client(base_url=live, timeout=30) as http:
        r = http.get(f"/api/v1/orgs/globex/deployments/{deployment_id}/logs", headers=other)
        assert r.status_code == 404
        r = http.get(f"/api/v1/orgs/globex/apps/{app_id}/logs/stream", headers=other)
        assert r.status_code == 404
