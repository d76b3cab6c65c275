"""/api/v1/orgs/{org}/jobs: list, show, cancel, as each role, key and organization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from gakwaya.db.models import AuditRecord
from gakwaya.kernel import Kernel
from tests.conftest import World
from tests.jobs.helpers import logs, wait_log, wait_state

Client = TestClient[Litestar]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # One runner thread: a holding job keeps the next one queued.
    return {"plugin_modules": ["tests.jobs.jobplugin"], "job_threads": 1}


def url(org: str, rest: str = "") -> str:
    return f"/api/v1/orgs/{org}/jobs{rest}"


@pytest.fixture
def finished(client: Client, kernel: Kernel, world: World) -> dict[str, str]:
    """Three finished acme jobs and one globex job."""
    a = world.a.org.id
    ids = {
        "echo1": kernel.jobs.enqueue("test.echo", org_id=a, arguments={"n": 1}).id,
        "fail": kernel.jobs.enqueue("test.fail", org_id=a).id,
        "echo2": kernel.jobs.enqueue("test.echo", org_id=a, arguments={"n": 2}).id,
        "globex": kernel.jobs.enqueue("test.echo", org_id=world.b.org.id).id,
        "system": kernel.jobs.enqueue("test.echo").id,
    }
    for job_id in ids.values():
        wait_state(kernel, job_id)
    return ids


def test_list_newest_first_with_filters_and_pages(
    client: Client, world: World, finished: dict[str, str]
) -> None:
    viewer = world.a.sessions["viewer"]
    r = client.get(url("acme"), headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [j["id"] for j in body["items"]] == [
        finished["echo2"],
        finished["fail"],
        finished["echo1"],
    ]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["state"] == "succeeded" and first["progress"] == 100 and first["attempts"] == 1

    r = client.get(url("acme"), params={"state": "failed"}, headers=viewer)
    assert [j["id"] for j in r.json()["items"]] == [finished["fail"]]
    r = client.get(url("acme"), params={"type": "test.echo"}, headers=viewer)
    assert [j["id"] for j in r.json()["items"]] == [finished["echo2"], finished["echo1"]]

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = client.get(url("acme"), params=params, headers=world.a.keys["read"])
        assert r.status_code == 200, r.text
        seen += [j["id"] for j in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [finished["echo2"], finished["fail"], finished["echo1"]]


def test_list_rejects_bad_filters(client: Client, world: World) -> None:
    viewer = world.a.sessions["viewer"]
    for params, field in [
        ({"state": "stuck"}, "state"),
        ({"type": "Bad Type!"}, "type"),
        ({"cursor": "12"}, "cursor"),
        ({"cursor": "1-" + "z" * 32}, "cursor"),
    ]:
        r = client.get(url("acme"), params=params, headers=viewer)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field
    r = client.get(url("acme"), params={"limit": 0}, headers=viewer)
    assert r.status_code in (400, 422)


def test_show_includes_logs_result_and_error(
    client: Client, world: World, finished: dict[str, str]
) -> None:
    viewer = world.a.sessions["viewer"]
    r = client.get(url("acme", f"/{finished['echo1']}"), headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == {"echo": {"n": 1}, "attempt": 1}
    assert body["arguments"] == {"n": 1}
    assert [line["line"] for line in body["logs"]] == ["hello", "half way"]
    assert body["logs_truncated"] is False
    r = client.get(url("acme", f"/{finished['fail']}"), headers=viewer)
    assert r.json()["state"] == "failed" and r.json()["error"] == "RuntimeError: boom"


def test_other_organizations_jobs_are_not_found(
    client: Client, world: World, finished: dict[str, str]
) -> None:
    globex_owner = world.b.sessions["owner"]
    acme_job = finished["echo1"]
    # Through globex's own URL: the id exists but is not globex's.
    assert client.get(url("globex", f"/{acme_job}"), headers=globex_owner).status_code == 404
    r = client.post(url("globex", f"/{acme_job}/cancel"), headers=globex_owner)
    assert r.status_code == 404
    # Through acme's URL: globex members are not members there.
    assert client.get(url("acme", f"/{acme_job}"), headers=globex_owner).status_code == 404
    assert client.get(url("acme"), headers=world.b.keys["admin"]).status_code == 404
    # Installation-wide jobs (no organization) are nobody's through the API.
    system = finished["system"]
    assert (
        client.get(url("acme", f"/{system}"), headers=world.a.sessions["owner"]).status_code == 404
    )
    listed = client.get(url("globex"), headers=globex_owner).json()["items"]
    assert [j["id"] for j in listed] == [finished["globex"]]


def test_bad_job_id_is_422_naming_the_field(client: Client, world: World) -> None:
    owner = world.a.sessions["owner"]
    for bad in ["123", "Z" * 32, "0" * 33, "A" * 32, "x%20y"]:
        r = client.get(url("acme", f"/{bad}"), headers=owner)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == "job_id"
        r = client.post(url("acme", f"/{bad}/cancel"), headers=owner)
        assert r.status_code == 422, (bad, r.text)
    assert client.get(url("acme", "/" + "0" * 32), headers=owner).status_code == 404


def test_cancel_queued_and_running_jobs(
    client: Client, kernel: Kernel, world: World, tmp_path: Path
) -> None:
    a = world.a.org.id
    holder = kernel.jobs.enqueue("test.hold", org_id=a, arguments={"release": str(tmp_path / "x")})
    wait_log(kernel, holder.id, "holding")
    waiting = kernel.jobs.enqueue("test.echo", org_id=a)  # queued behind the holder

    # Who may not cancel.
    r = client.post(url("acme", f"/{waiting.id}/cancel"), headers=world.a.sessions["viewer"])
    assert r.status_code == 403, r.text
    r = client.post(url("acme", f"/{waiting.id}/cancel"), headers=world.a.keys["read"])
    assert r.status_code == 403, r.text
    assert wait_state(kernel, waiting.id, "queued").state == "queued"

    # A developer cancels the queued job: at once.
    r = client.post(url("acme", f"/{waiting.id}/cancel"), headers=world.a.sessions["developer"])
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled" and r.json()["cancel_requested"] is True
    assert "cancelled before it started by developer@acme.example.com" in logs(kernel, waiting.id)

    # A deploy key cancels the running one: it is asked to stop, then stops.
    r = client.post(url("acme", f"/{holder.id}/cancel"), headers=world.a.keys["deploy"])
    assert r.status_code == 200, r.text
    assert r.json()["cancel_requested"] is True
    assert wait_state(kernel, holder.id).state == "cancelled"

    # Finished: a conflict.
    r = client.post(url("acme", f"/{holder.id}/cancel"), headers=world.a.sessions["owner"])
    assert r.status_code == 409, r.text
    assert "already ended cancelled" in r.json()["detail"]
    assert kernel.jobs.get(waiting.id).attempts == 0  # type: ignore[union-attr]

    with kernel.db.session() as db:
        audited = [
            (row.target_type, row.target_id, row.outcome, row.status_code)
            for row in db.scalars(
                select(AuditRecord)
                .where(AuditRecord.action == "jobs_cancel")
                .order_by(AuditRecord.id)
            )
        ]
    # Refused before the handler ran: the middleware names the target by its path parameter.
    assert ("job_id", waiting.id, "denied", 403) in audited
    assert ("job", waiting.id, "success", 200) in audited
    assert ("job", holder.id, "success", 200) in audited
    assert ("job", holder.id, "failure", 409) in audited


def test_operation_ids_in_the_schema(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    ops = {
        op["operationId"]
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/orgs/{org}/jobs")
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert ops == {"jobs_list", "jobs_show", "jobs_cancel"}
