"""``GET /api/v1/orgs/{org}/events``: the organization's stored events."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from gakwaya.kernel import Kernel
from tests.conftest import World
from tests.events.sample import Boom, Ping, Pong

URL = "/api/v1/orgs/{}/events"


def test_list_newest_first_with_type_filter(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    a, b = world.a.org.id, world.b.org.id
    p1 = kernel.events.publish(Ping(org_id=a, note="1"))
    q1 = kernel.events.publish(Pong(org_id=a, note="2"))
    kernel.events.publish(Ping(org_id=b, note="other org"))
    kernel.events.publish(Ping(note="installation-wide"))
    p2 = kernel.events.publish(Ping(org_id=a, note="3"))
    h = world.a.sessions["viewer"]  # events.read: every member

    r = client.get(URL.format("acme"), headers=h)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [e["id"] for e in items] == [p2, q1, p1]
    assert items[0] == {
        "id": p2,
        "type": "test.ping",
        "org_id": a,
        "created_at": items[0]["created_at"],
        "payload": {"type": "test.ping", "org_id": a, "note": "3", "reply": False},
    }
    assert items[0]["created_at"].endswith("Z")

    r = client.get(URL.format("acme"), params={"type": "test.ping"}, headers=h)
    assert [e["id"] for e in r.json()["items"]] == [p2, p1]
    r = client.get(URL.format("acme"), params={"type": "test.*"}, headers=h)
    assert [e["id"] for e in r.json()["items"]] == [p2, q1, p1]
    r = client.get(URL.format("acme"), params={"type": "test.boom"}, headers=h)
    assert r.json()["items"] == []

    r = client.get(URL.format("globex"), headers=world.b.keys["read"])
    assert r.status_code == 200, r.text
    assert [e["payload"]["note"] for e in r.json()["items"]] == ["other org"]


def test_list_pagination(client: TestClient[Litestar], kernel: Kernel, world: World) -> None:
    ids = [kernel.events.publish(Boom(org_id=world.a.org.id)) for _ in range(5)]
    for _ in range(3):
        kernel.events.publish(Boom(org_id=world.b.org.id))
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        r = client.get(URL.format("acme"), params=params, headers=world.a.keys["read"])
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e["id"] for e in body["items"]]
        pages += 1
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == list(reversed(ids))
    assert pages == 3


def test_list_bad_input(client: TestClient[Litestar], world: World) -> None:
    h = world.a.sessions["owner"]
    for params, field in [
        ({"type": "Bad Type"}, "type"),
        ({"type": "x" * 101}, "type"),
        ({"type": "a.*.b"}, "type"),
        ({"cursor": "-1"}, "cursor"),
        ({"limit": "1000"}, "limit"),
    ]:
        r = client.get(URL.format("acme"), params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field, (params, r.text)


def test_list_access(client: TestClient[Litestar], kernel: Kernel, world: World) -> None:
    kernel.events.publish(Ping(org_id=world.a.org.id, note="secret plans"))
    url = URL.format("acme")
    for role in ("owner", "admin", "developer", "viewer"):
        assert client.get(url, headers=world.a.sessions[role]).status_code == 200, role
    for headers in (world.b.sessions["owner"], world.b.keys["admin"]):
        r = client.get(url, headers=headers)
        assert r.status_code == 404, r.text
        assert "secret plans" not in r.text
    assert client.get(url).status_code == 401
    assert client.get(URL.format("nope"), headers=world.a.sessions["owner"]).status_code == 404
