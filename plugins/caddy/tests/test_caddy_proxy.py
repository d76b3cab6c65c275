"""proxy:caddy serving real HTTP through a real Caddy: routes in and back out, load
balancing, health checks, redirects, limits, switching upstreams under load."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from caddy_testlib import (
    Upstream,
    admin_call,
    answer_or_error,
    dead_address,
    request,
    wait_for,
)

from gakwaya_caddy.plugin import CaddyProxy
from gakwaya_sdk.providers import ProviderError, Route, routes_key


def key(routes: list[Route]) -> list[str]:
    """What the core reconciler compares: every field, whatever the order."""
    return routes_key(routes)


def every_kind(one: str, two: str) -> list[Route]:
    return [
        Route(
            app="a1",
            domain="one.example.test",
            upstreams=[one, two],
            tls=False,
            redirect_from=["www.one.example.test"],
            health_path="/healthz",
            health_interval=0.5,
            health_timeout=0.3,
            max_body_bytes=1000,
            timeout=2.5,
        ),
        Route(
            app="a2",
            domain="two.example.test",
            upstreams=[one],
            tls=True,
            https_redirect=False,
            redirect_from=["www.two.example.test", "old.example.test"],
        ),
        Route(app="a3", domain="three.example.test", upstreams=[two], tls=True),
        Route(
            app="a4",
            domain="four.example.test",
            upstreams=[two, one],
            tls=False,
            https_redirect=False,
            health_path="/healthz?full=1",
            health_interval=7.0,
        ),
        Route(
            app="panel",
            domain="panel.example.test",
            upstreams=["[::1]:8000"],
            tls=True,
            timeout=60.0,
            health_path="/healthz",
        ),
    ]


def test_apply_then_routes_gives_the_same_routes(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    one, two = upstreams("one"), upstreams("two")
    routes = every_kind(one.address, two.address)
    caddy.apply(routes=routes)
    back = caddy.routes()
    assert back == sorted(routes, key=lambda r: r.domain)  # as structs, field by field
    assert key(back) == key(routes)
    # Unchanged routes: nothing sent to Caddy (its config and ETag stay as they are).
    admin = caddy.admin()
    before = admin.read()
    caddy.apply(routes=list(reversed(routes)))
    assert admin.read() == before
    # Port routes are the port forwarder's.
    caddy.apply(routes=[*routes, Route(app="a9", port=20001, upstreams=[one.address])])
    assert key(caddy.routes()) == key(routes)
    caddy.apply(routes=routes[:1])
    assert caddy.routes() == routes[:1]
    caddy.apply(routes=[])
    assert caddy.routes() == []


def test_http_routes_are_served_and_redirected(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    one, two = upstreams("one"), upstreams("two")
    caddy.apply(routes=every_kind(one.address, two.address))
    s = caddy.settings()
    http, https = s.http_port, s.https_port
    # tls=False: proxied on plain HTTP; its redirect_from → http://domain, path kept.
    assert request(http, "four.example.test").status == 200
    answer = request(http, "www.one.example.test", "/a/b?c=1")
    assert answer.status == 308
    assert answer.headers["Location"] == f"http://one.example.test:{http}/a/b?c=1"
    # tls + https_redirect: plain HTTP redirects to HTTPS, redirect_from too.
    answer = request(http, "three.example.test", "/x?y=2")
    assert (answer.status, answer.headers["Location"]) == (
        308,
        f"https://three.example.test:{https}/x?y=2",
    )
    # tls without https_redirect: proxied on plain HTTP as well.
    assert request(http, "two.example.test").text == "one"
    answer = request(http, "old.example.test", "/p")
    assert answer.headers["Location"] == f"http://two.example.test:{http}/p"
    # A host nobody routes.
    assert request(http, "nobody.example.test").status == 404
    # The panel's own route, on HTTPS.
    assert request(http, "panel.example.test").status == 308


def test_requests_are_balanced_round_robin(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    one, two = upstreams("one"), upstreams("two")
    port = caddy.settings().http_port
    caddy.apply(
        routes=[
            Route(
                app="a1", domain="lb.example.test", upstreams=[one.address, two.address], tls=False
            )
        ]
    )
    answers = [request(port, "lb.example.test").text for _ in range(8)]
    assert answers.count("one") == answers.count("two") == 4
    assert answers[0] != answers[1]
    assert sorted(u["address"] for u in caddy.upstreams()) == sorted([one.address, two.address])


def test_an_unreachable_upstream_is_retried_on_another(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    live = upstreams("live")
    port = caddy.settings().http_port
    caddy.apply(
        routes=[
            Route(
                app="a1",
                domain="retry.example.test",
                upstreams=[dead_address(), live.address, dead_address()],
                tls=False,
            )
        ]
    )
    assert [request(port, "retry.example.test").text for _ in range(6)] == ["live"] * 6


def test_the_active_health_check_takes_a_failing_upstream_out_and_back(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    good, bad = upstreams("good"), upstreams("bad")
    bad.health = 500
    port = caddy.settings().http_port
    caddy.apply(
        routes=[
            Route(
                app="a1",
                domain="health.example.test",
                upstreams=[good.address, bad.address],
                tls=False,
                health_path="/healthz",
                health_interval=0.2,
                health_timeout=1.0,
            )
        ]
    )
    # The upstream counts a check when it arrives, before Caddy reads the 500; by the
    # second check Caddy has acted on the first.
    wait_for(lambda: bad.health_checks >= 2, "two health checks of the failing upstream")
    assert [request(port, "health.example.test").text for _ in range(6)] == ["good"] * 6
    bad.health = 302  # any status below 400 is healthy
    wait_for(
        lambda: "bad" in {request(port, "health.example.test").text for _ in range(4)},
        "the recovered upstream to get traffic again",
    )


def test_redirect_from_hosts_redirect_permanently(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    port = caddy.settings().http_port
    caddy.apply(
        routes=[
            Route(
                app="a1",
                domain="example.test",
                upstreams=[app.address],
                tls=False,
                redirect_from=["www.example.test"],
            )
        ]
    )
    answer = request(port, "www.example.test", "/shop?item=3", method="POST", body=b"x")
    assert answer.status == 308  # 308: the method and body are kept by the client
    assert answer.headers["Location"] == f"http://example.test:{port}/shop?item=3"
    assert app.hits == 0
    assert request(port, "example.test").text == "app"


def test_request_bodies_over_the_limit_get_413(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    port = caddy.settings().http_port
    caddy.apply(
        routes=[
            Route(
                app="a1",
                domain="upload.example.test",
                upstreams=[app.address],
                tls=False,
                max_body_bytes=100,
            )
        ]
    )
    ok = request(port, "upload.example.test", method="POST", body=b"x" * 100)
    assert (ok.status, ok.text) == (200, "app got 100")
    # Declared too large: answered by Caddy, the app never sees it.
    big = request(port, "upload.example.test", method="POST", body=b"x" * 101)
    assert big.status == 413
    assert app.bodies == [100]
    big = request(port, "upload.example.test", method="POST", body=b"x" * 5000)
    assert big.status == 413

    # Chunked (no length declared): cut at the limit, still a 413.
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 50

    chunked = request(port, "upload.example.test", method="POST", body=chunks())
    assert chunked.status == 413
    # The app is not taken out by a client's oversized body.
    assert [request(port, "upload.example.test").text for _ in range(3)] == ["app"] * 3


def test_a_slow_upstream_gets_504_after_the_timeout(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    slow = upstreams("slow")
    port = caddy.settings().http_port
    caddy.apply(
        routes=[
            Route(
                app="a1",
                domain="slow.example.test",
                upstreams=[slow.address],
                tls=False,
                timeout=0.5,
            )
        ]
    )
    try:
        assert request(port, "slow.example.test", "/slow").status == 504
        assert slow.hits == 1  # a request that reached the app is not sent again
    finally:
        slow.hold.set()
    assert request(port, "slow.example.test").text == "slow"


def test_switching_upstreams_under_load_fails_no_request(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    blue, green = upstreams("blue"), upstreams("green")
    port = caddy.settings().http_port

    def route(*addresses: str) -> list[Route]:
        return [
            Route(
                app="a1",
                domain="switch.example.test",
                upstreams=list(addresses),
                tls=False,
                health_path="/healthz",
                health_interval=0.5,
            )
        ]

    caddy.apply(routes=route(blue.address))
    stop = threading.Event()
    results: list[str] = []

    def client() -> None:
        while not stop.is_set():
            results.append(answer_or_error(port, "switch.example.test"))

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(results) >= 20, "requests before the switch")
        caddy.apply(routes=route(blue.address, green.address))
        count = len(results)
        wait_for(lambda: len(results) >= count + 20, "requests during the switch")
        caddy.apply(routes=route(green.address))
        count = len(results)
        wait_for(lambda: len(results) >= count + 20, "requests after the switch")
    finally:
        stop.set()
        thread.join(timeout=30)
    errors = [r for r in results if r not in ("blue", "green")]
    assert not errors, errors[:3]
    assert results[-1] == "green"
    assert set(results[:20]) == {"blue"}


def test_routes_without_a_running_caddy(caddies: Any) -> None:
    proxy = caddies.make(start=False)
    # Nothing to serve and no Caddy: nothing to do; a Caddy that does not run serves
    # nothing.
    proxy.apply(routes=[Route(app="a1", port=20001, upstreams=["127.0.0.1:1"])])
    assert proxy.routes() == []
    assert proxy.state()["running"] is False
    with pytest.raises(ProviderError, match=r"does not answer.*gakwaya proxy start"):
        proxy.apply(routes=[Route(app="a1", domain="x.example.test", upstreams=[], tls=False)])


def test_the_upstreams_endpoint_lists_what_is_proxied(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    one = upstreams("one")
    port = caddy.settings().http_port
    caddy.apply(
        routes=[Route(app="a1", domain="u.example.test", upstreams=[one.address], tls=False)]
    )
    request(port, "u.example.test")
    found = {u["address"]: u for u in caddy.upstreams()}
    assert set(found) == {one.address}
    assert set(found[one.address]) >= {"address", "num_requests", "fails"}
    raw = admin_call(caddy.settings().admin_address, "GET", "/reverse_proxy/upstreams")
    assert raw.json() == caddy.upstreams()
