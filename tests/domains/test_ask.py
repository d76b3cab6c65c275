"""``GET /api/v1/proxy/ask?domain=``: Caddy's on-demand TLS question, answered for the
proxy on this host only. The panel runs under uvicorn on a real socket so the peer
address is the real one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from sqlalchemy import update

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Domain
from tests import services
from tests.domains.conftest import BASE
from tests.domains.helpers import app_with_project, domains_url, run_app

ASK = "/api/v1/proxy/ask"


def _serve(app: Litestar, host: str) -> Iterator[str]:
    port = services.free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def loopback(app: Litestar, client: Any) -> Iterator[str]:
    yield from _serve(app, "127.0.0.1")


def _local_address() -> str | None:
    """This host's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.fixture
def served(client, kernel, world, doubles) -> dict[str, str]:
    """An app running with an active custom domain (www redirect), a pending one, and a
    stopped app with an active domain."""
    dev = world.a.sessions["developer"]
    web = app_with_project(client, dev)
    run_app(kernel, doubles, web["id"])
    names = {}
    for key, name, extra in (
        ("active", "shop.example.com", {"redirect": "www_to_apex"}),
        ("pending", "pending.example.com", {}),
    ):
        r = client.post(domains_url(web["id"]), json={"name": name, **extra}, headers=dev)
        assert r.status_code == 201, r.text
        names[key] = name
    stopped = app_with_project(client, dev, "old")
    run_app(kernel, doubles, stopped["id"])
    r = client.post(domains_url(stopped["id"]), json={"name": "old.example.com"}, headers=dev)
    assert r.status_code == 201, r.text
    names["stopped"] = "old.example.com"
    with kernel.db.transaction() as db:
        db.execute(
            update(Domain)
            .where(Domain.name.in_(["shop.example.com", "old.example.com"]))
            .values(verified_at=utcnow())
        )
        db.execute(update(App).where(App.id == stopped["id"]).values(desired_state="stopped"))
    return names


@pytest.mark.parametrize("extra_settings", [{"panel_domain": "panel.example.test"}])
def test_known_and_unknown_names(loopback, served):
    def ask(name: str) -> int:
        return httpx.get(f"{loopback}{ASK}", params={"domain": name}, timeout=10).status_code

    for name in (
        "shop.example.com",
        "SHOP.example.com.",
        "www.shop.example.com",
        f"web-production.{BASE}",
        "panel.example.test",
    ):
        assert ask(name) == 200, name
    for name in (
        "pending.example.com",
        "old.example.com",  # its app is stopped
        f"old-production.{BASE}",
        "unknown.example.com",
        "example.com",
        "a.shop.example.com",
        "a;b.example.com",
        "127.0.0.1",
        "",
    ):
        assert ask(name) == 404, name
    r = httpx.get(f"{loopback}{ASK}", params={"domain": "shop.example.com"}, timeout=10)
    assert r.json() == {"domain": "shop.example.com", "served": True}


def test_forwarded_requests_are_refused(loopback, served):
    """A request a proxy forwarded comes from elsewhere, whatever the peer."""
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        r = httpx.get(
            f"{loopback}{ASK}",
            params={"domain": "shop.example.com"},
            headers={header: "198.51.100.7"},
            timeout=10,
        )
        assert r.status_code == 403, (header, r.text)


def test_only_loopback_clients(app, client, served):
    # The in-process client is not on loopback ("testclient" as its address).
    r = client.get(ASK, params={"domain": "shop.example.com"})
    assert r.status_code == 403 and "loopback" in r.json()["detail"]
    address = _local_address()
    if address is None:
        pytest.skip("this host has no address besides loopback")
    for base in _serve(app, address):
        r = httpx.get(f"{base}{ASK}", params={"domain": "shop.example.com"}, timeout=10)
        assert r.status_code == 403, r.text
