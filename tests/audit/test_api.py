"""Rows written by the kernel middleware, and ``GET /api/v1/orgs/{org}/audit``."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from gakwaya.db.base import utcnow
from gakwaya.db.models import AuditRecord
from gakwaya.kernel import Kernel
from tests.conftest import World

URL = "/api/v1/orgs/{}/audit"


def _rows(kernel: Kernel, action: str | None = None) -> list[AuditRecord]:
    with kernel.db.session() as db:
        query = select(AuditRecord).order_by(AuditRecord.id)
        if action:
            query = query.where(AuditRecord.action == action)
        return list(db.scalars(query))


def _last(kernel: Kernel) -> AuditRecord:
    return _rows(kernel)[-1]


# Rows written by the middleware ---------------------------------------------------


def test_mutating_request_writes_a_row(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    dev = world.a.users["developer"]
    r = client.post(
        "/api/v1/orgs/acme/widgets", json={"name": "w"}, headers=world.a.sessions["developer"]
    )
    assert r.status_code == 201, r.text
    row = _last(kernel)
    assert (row.action, row.outcome, row.status_code) == ("widgets_create", "success", 201)
    assert (row.actor_type, row.actor_id, row.actor_label) == ("user", str(dev.id), dev.email)
    assert row.org_id == world.a.org.id
    assert (row.target_type, row.target_id) == ("widget", "42")
    assert row.detail == {"name": "w"}
    assert row.ip == "testclient"  # the TestClient's peer address
    assert kernel.audit.verify().ok


def test_api_key_request_is_attributed_to_the_key(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    r = client.post("/api/v1/orgs/acme/widgets", json={"name": "k"}, headers=world.a.keys["write"])
    assert r.status_code == 201, r.text
    row = _last(kernel)
    assert row.actor_type == "api_key" and row.outcome == "success"
    assert row.actor_label.startswith(world.a.users["owner"].email + " (api key ")
    assert row.org_id == world.a.org.id


def test_denied_requests_are_recorded_with_their_actor(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    viewer = world.a.users["viewer"]
    r = client.post(
        "/api/v1/orgs/acme/widgets", json={"name": "v"}, headers=world.a.sessions["viewer"]
    )
    assert r.status_code == 403, r.text
    row = _last(kernel)
    assert (row.action, row.outcome, row.status_code) == ("widgets_create", "denied", 403)
    assert (row.actor_type, row.actor_id) == ("user", str(viewer.id))
    assert row.org_id == world.a.org.id

    r = client.post("/api/v1/orgs/acme/widgets", json={"name": "r"}, headers=world.a.keys["read"])
    assert r.status_code == 403, r.text
    row = _last(kernel)
    assert (row.outcome, row.actor_type) == ("denied", "api_key")

    r = client.post("/api/v1/orgs/acme/widgets", json={"name": "anon"})
    assert r.status_code == 401, r.text
    row = _last(kernel)
    assert (row.outcome, row.status_code, row.actor_type) == ("denied", 401, "anonymous")
    assert row.org_id is None

    # A member of another organization: a 404, recorded without that organization.
    r = client.post(
        "/api/v1/orgs/acme/widgets", json={"name": "x"}, headers=world.b.sessions["owner"]
    )
    assert r.status_code == 404, r.text
    row = _last(kernel)
    assert (row.outcome, row.status_code) == ("failure", 404)
    assert row.actor_id == str(world.b.users["owner"].id) and row.org_id is None
    assert kernel.audit.verify().ok


def test_failed_request_is_recorded_as_failure(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    r = client.post(
        "/api/v1/orgs/acme/widgets", json={"name": "bad"}, headers=world.a.sessions["admin"]
    )
    assert r.status_code == 422, r.text
    row = _last(kernel)
    assert (row.outcome, row.status_code, row.target_id) == ("failure", 422, "42")
    r = client.post("/api/v1/orgs/acme/widgets", json={"nom": 1}, headers=world.a.sessions["admin"])
    assert r.status_code in (400, 422), r.text
    assert _last(kernel).outcome == "failure"


def test_secret_read_is_audited_and_plain_reads_are_not(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    before = len(_rows(kernel))
    r = client.get("/api/v1/orgs/acme/widgets/7/secret", headers=world.a.sessions["developer"])
    assert r.status_code == 200, r.text
    row = _last(kernel)
    assert (row.action, row.outcome, row.target_type, row.target_id) == (
        "widgets_reveal",
        "success",
        "widget_id",
        "7",
    )
    r = client.get(URL.format("acme"), headers=world.a.sessions["admin"])
    assert r.status_code == 200
    assert len(_rows(kernel)) == before + 1


# Listing ------------------------------------------------------------------------------


def _seed(kernel: Kernel, world: World) -> dict[str, Any]:
    a, b = world.a.org.id, world.b.org.id
    rec = kernel.audit.record
    rec(
        action="members_update",
        outcome="success",
        actor_type="user",
        actor_id="11",
        actor_label="alice@acme.example.com",
        org_id=a,
        target_type="member",
        target_id="5",
    )
    rec(
        action="members_remove",
        outcome="denied",
        actor_type="user",
        actor_id="12",
        actor_label="bob@acme.example.com",
        org_id=a,
        target_type="member",
        target_id="6",
    )
    time.sleep(0.01)  # distinct timestamps around the boundary below
    boundary = utcnow()
    time.sleep(0.01)
    rec(
        action="apps_create",
        outcome="failure",
        actor_type="api_key",
        actor_id="3",
        actor_label="alice@acme.example.com (api key 3)",
        org_id=a,
        target_type="app",
        target_id="9",
    )
    rec(
        action="apps_delete",
        outcome="error",
        actor_type="user",
        actor_id="11",
        actor_label="Alice@ACME.example.com",
        org_id=a,
        target_type="app",
        target_id="9",
    )
    rec(
        action="members_update",
        outcome="success",
        actor_type="user",
        actor_id="99",
        actor_label="eve@globex.example.com",
        org_id=b,
        target_type="member",
        target_id="5",
    )
    rec(action="setup_complete", outcome="success", actor_type="anonymous")
    return {"boundary": boundary}


def _actions(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def test_list_filters(client: TestClient[Litestar], kernel: Kernel, world: World) -> None:
    seeded = _seed(kernel, world)
    h = world.a.sessions["admin"]
    url = URL.format("acme")
    everything = _actions(client.get(url, headers=h))
    # Newest first; only this organization's rows.
    assert everything == ["apps_delete", "apps_create", "members_remove", "members_update"]

    item = client.get(url, headers=h).json()["items"][0]
    assert set(item) >= {
        "id",
        "created_at",
        "actor_type",
        "actor_id",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "ip",
        "outcome",
        "status_code",
        "detail",
    }

    assert _actions(client.get(url, params={"action": "members_update"}, headers=h)) == [
        "members_update"
    ]
    assert _actions(client.get(url, params={"action": "apps_*"}, headers=h)) == [
        "apps_delete",
        "apps_create",
    ]
    assert _actions(client.get(url, params={"action": "apps_%"}, headers=h)) == []
    assert _actions(client.get(url, params={"actor": "alice@"}, headers=h)) == [
        "apps_delete",
        "apps_create",
        "members_update",
    ]
    assert _actions(client.get(url, params={"actor": "12"}, headers=h)) == ["members_remove"]
    assert _actions(client.get(url, params={"outcome": "denied"}, headers=h)) == ["members_remove"]
    assert _actions(client.get(url, params={"target_type": "app"}, headers=h)) == [
        "apps_delete",
        "apps_create",
    ]
    assert _actions(
        client.get(url, params={"target_type": "member", "target_id": "6"}, headers=h)
    ) == ["members_remove"]
    boundary: dt.datetime = seeded["boundary"]
    iso = boundary.isoformat().replace("+00:00", "Z")
    assert _actions(client.get(url, params={"since": iso}, headers=h)) == [
        "apps_delete",
        "apps_create",
    ]
    assert _actions(client.get(url, params={"until": iso}, headers=h)) == [
        "members_remove",
        "members_update",
    ]
    # An offset other than UTC means the same instant.
    plus2 = boundary.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    assert _actions(client.get(url, params={"since": plus2}, headers=h)) == [
        "apps_delete",
        "apps_create",
    ]
    assert (
        _actions(client.get(url, params={"since": "2000-01-01", "until": "2001-01-01"}, headers=h))
        == []
    )


def test_list_bad_filters_are_422_naming_the_field(
    client: TestClient[Litestar], world: World
) -> None:
    h = world.a.sessions["owner"]
    url = URL.format("acme")
    for params, field in [
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-40"}, "until"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "until"),
        ({"outcome": "maybe"}, "outcome"),
        ({"actor": "a" * 301}, "actor"),
        ({"action": "x\ny"}, "action"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
    ]:
        r = client.get(url, params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        body = r.json()
        assert body["errors"][0]["field"] == field, (params, body)


def test_list_pagination(client: TestClient[Litestar], kernel: Kernel, world: World) -> None:
    for i in range(7):
        kernel.audit.record(
            action="things_update",
            outcome="success",
            actor_type="user",
            org_id=world.a.org.id,
            target_id=str(i),
        )
        kernel.audit.record(
            action="things_update",
            outcome="success",
            actor_type="user",
            org_id=world.b.org.id,
            target_id=str(i),
        )
    h = world.a.sessions["admin"]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = client.get(URL.format("acme"), params=params, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 3
        seen += [e["target_id"] for e in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [str(i) for i in reversed(range(7))]
    assert pages == 3


def test_list_access(client: TestClient[Litestar], kernel: Kernel, world: World) -> None:
    _seed(kernel, world)
    url = URL.format("acme")
    for role in ("owner", "admin"):
        assert client.get(url, headers=world.a.sessions[role]).status_code == 200
    for role in ("developer", "viewer"):
        r = client.get(url, headers=world.a.sessions[role])
        assert r.status_code == 403, (role, r.text)
    # A read-only key of an owner may list (audit.read needs only the read scope).
    r = client.get(url, headers=world.a.keys["read"])
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 4
    # Another organization's members and keys: 404, never a 403 or a row.
    for headers in (world.b.sessions["owner"], world.b.keys["admin"]):
        r = client.get(url, headers=headers)
        assert r.status_code == 404, r.text
    assert client.get(URL.format("nope"), headers=world.a.sessions["owner"]).status_code == 404
    assert client.get(url).status_code == 401
    # globex sees only its own row.
    r = client.get(URL.format("globex"), headers=world.b.sessions["owner"])
    assert [e["actor_label"] for e in r.json()["items"]] == ["eve@globex.example.com"]
