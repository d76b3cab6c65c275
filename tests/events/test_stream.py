"""``GET /api/v1/orgs/{org}/events/stream``: Server-Sent Events against a real server.

The app runs under uvicorn on a free port (streaming through the TestClient would
buffer); the test reads with httpx, every read bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar

from gakwaya.kernel import Kernel
from tests import services
from tests.conftest import World
from tests.events.sample import Ping, Pong


@pytest.fixture
def live(app: Litestar) -> Iterator[str]:
    port = services.free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


class Stream:
    """Reads one SSE response message by message (blank-line separated)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"comments": []}
        for line in self.lines:
            if line == "":
                if len(msg) > 1 or msg["comments"]:
                    return msg
                continue
            if line.startswith(":"):
                msg["comments"].append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            msg[field] = value if field != "data" else msg.get("data", "") + value
        raise AssertionError("stream ended")

    def event(self) -> dict[str, Any]:
        """The next message carrying an event (comments skipped)."""
        while True:
            msg = self.message()
            if "data" in msg:
                msg["json"] = json.loads(msg["data"])
                return msg


@contextlib.contextmanager
def open_stream(
    base: str, org: str, headers: dict[str, str], params: dict[str, str] | None = None
) -> Iterator[Stream]:
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(15.0)) as http,
        http.stream(
            "GET", f"/api/v1/orgs/{org}/events/stream", headers=headers, params=params
        ) as response,
    ):
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        first = stream.message()
        assert first["comments"] == ["stream open"], first  # subscribed from here on
        yield stream


def _get_status(
    base: str, org: str, headers: dict[str, str], params: dict[str, str] | None = None
) -> tuple[int, str]:
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(15.0)) as http,
        http.stream(
            "GET", f"/api/v1/orgs/{org}/events/stream", headers=headers, params=params
        ) as response,
    ):
        if response.status_code == 200:
            return 200, ""
        return response.status_code, response.read().decode()


def test_resume_after_an_id_then_live(live: str, kernel: Kernel, world: World) -> None:
    a, b = world.a.org.id, world.b.org.id
    ids = [kernel.events.publish(Ping(org_id=a, note=f"n{i}")) for i in range(4)]
    kernel.events.publish(Ping(org_id=b, note="globex"))
    kernel.events.publish(Ping(note="installation-wide"))
    with open_stream(live, "acme", world.a.sessions["viewer"], {"after": str(ids[1])}) as s:
        got = [s.event(), s.event()]
        assert [int(m["id"]) for m in got] == ids[2:]
        assert [m["event"] for m in got] == ["test.ping", "test.ping"]
        assert got[0]["json"]["payload"]["note"] == "n2"
        assert got[0]["json"]["id"] == ids[2] and got[0]["json"]["org_id"] == a
        # Live: another org's event and an installation-wide one never show; ours does.
        kernel.events.publish(Ping(org_id=b, note="globex live"))
        kernel.events.publish(Ping(note="wide live"))
        live_id = kernel.events.publish(Pong(org_id=a, note="live"))
        m = s.event()
        assert (int(m["id"]), m["event"]) == (live_id, "test.pong")
        assert m["json"]["payload"]["note"] == "live"


def test_last_event_id_header_wins_over_after(live: str, kernel: Kernel, world: World) -> None:
    ids = [kernel.events.publish(Ping(org_id=world.a.org.id, note=str(i))) for i in range(4)]
    headers = {**world.a.keys["read"], "Last-Event-ID": str(ids[2])}
    with open_stream(live, "acme", headers, {"after": str(ids[0])}) as s:
        assert int(s.event()["id"]) == ids[3]


def test_without_a_position_only_new_events(live: str, kernel: Kernel, world: World) -> None:
    kernel.events.publish(Ping(org_id=world.a.org.id, note="old"))
    with open_stream(live, "acme", world.a.sessions["owner"]) as s:
        new = kernel.events.publish(Ping(org_id=world.a.org.id, note="new"))
        m = s.event()
        assert int(m["id"]) == new and m["json"]["payload"]["note"] == "new"


def test_many_events_arrive_in_order(live: str, kernel: Kernel, world: World) -> None:
    """More than one read batch of replay, then live events published from a thread."""
    a = world.a.org.id
    stored = [kernel.events.publish(Ping(org_id=a, note=str(i))) for i in range(130)]
    with open_stream(live, "acme", world.a.sessions["owner"], {"after": "0"}) as s:
        later: list[int] = []
        publisher = threading.Thread(
            target=lambda: later.extend(
                kernel.events.publish(Ping(org_id=a, note="t")) for _ in range(20)
            )
        )
        publisher.start()
        got = [int(s.event()["id"]) for _ in range(150)]
        publisher.join(30)
    assert got == stored + later


def test_keepalive_comments(live: str, kernel: Kernel, world: World) -> None:
    kernel.events.stream_keepalive = 0.2
    with open_stream(live, "acme", world.a.sessions["owner"]) as s:
        assert "keepalive" in s.message()["comments"]
        # Events still arrive between keepalives.
        new = kernel.events.publish(Ping(org_id=world.a.org.id, note="x"))
        assert int(s.event()["id"]) == new


def test_disconnect_ends_the_stream(live: str, kernel: Kernel, world: World) -> None:
    with open_stream(live, "acme", world.a.sessions["owner"]):
        assert kernel.events.waiters.count() == 1
    deadline = time.monotonic() + 20
    while kernel.events.waiters.count():
        assert time.monotonic() < deadline, "the stream outlived its client"
        time.sleep(0.05)


def test_stream_access_and_bad_input(live: str, world: World) -> None:
    assert _get_status(live, "acme", world.a.sessions["viewer"])[0] == 200
    assert _get_status(live, "acme", world.a.keys["read"])[0] == 200
    for headers in (world.b.sessions["owner"], world.b.keys["admin"]):
        assert _get_status(live, "acme", headers)[0] == 404
    assert _get_status(live, "acme", {})[0] == 401
    status, body = _get_status(live, "acme", world.a.sessions["owner"], {"after": "x1"})
    assert status == 422 and json.loads(body)["errors"][0]["field"] == "after"
    headers = {**world.a.sessions["owner"], "Last-Event-ID": "12; DROP"}
    status, body = _get_status(live, "acme", headers)
    assert status == 422 and json.loads(body)["errors"][0]["field"] == "Last-Event-ID"
