"""Certificates for real: Caddy's ACME client against Pebble (Let's Encrypt's test CA),
names resolved by pebble-challtestsrv, the served chain verified against Pebble's
roots; and certs:acme reporting issued, failed (with the CA's reason) and pending."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from caddy_testlib import Answer, Upstream, admin_get, free_port, https_request, request, wait_for

from gakwaya.testing.acme import Pebble, http_call
from gakwaya_sdk.providers import CertificateStatus, Route


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.example.test"


def pebble_settings(pebble: Pebble, **extra: Any) -> dict[str, Any]:
    return {
        "http_port": pebble.http_port,
        "https_port": pebble.tls_port,
        "acme_ca": pebble.directory_url,
        "acme_trusted_roots": str(pebble.listener_ca_path),
        "acme_email": "ops@example.test",
        **extra,
    }


def served(pebble: Pebble, host: str, path: str = "/") -> Answer | None:
    """The HTTPS answer for ``host`` once a certificate chaining to Pebble's roots is
    served for it, else None."""
    try:
        answer, _peer = https_request(pebble.tls_port, host, pebble.roots_pem(), path)
    except (OSError, ssl.SSLError):
        return None
    return answer


def wait_state(certs: Any, domain: str, state: str) -> CertificateStatus:
    found: list[CertificateStatus] = []

    def check() -> bool:
        found[:] = certs.status(domains=[domain])
        return found[0].state == state

    wait_for(check, f"certificate of {domain} to be {state}")
    return found[0]


def test_a_certificate_from_pebble_is_served_and_reported(
    caddies: Any, pebble: Pebble, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    domain, www = unique("site"), ""
    www = "www." + domain
    caddy = caddies.make(pebble_settings(pebble))
    certs = caddies.certs(caddy)
    assert certs.status(domains=[domain]) == [CertificateStatus(domain=domain, state="pending")]
    route = Route(app="a1", domain=domain, upstreams=[app.address], redirect_from=[www])
    caddy.apply(routes=[route])
    wait_for(lambda: served(pebble, domain) is not None, f"a verified certificate for {domain}")
    answer, peer = https_request(pebble.tls_port, domain, pebble.roots_pem(), "/hello")
    assert (answer.status, answer.text) == (200, "app")
    assert ("DNS", domain) in peer["subjectAltName"]
    # The redirect_from host has its own certificate, and redirects.
    wait_for(lambda: served(pebble, www) is not None, f"a verified certificate for {www}")
    answer, _peer = https_request(pebble.tls_port, www, pebble.roots_pem(), "/a?b=1")
    assert answer.status == 308
    assert answer.headers["Location"] == f"https://{domain}:{pebble.tls_port}/a?b=1"
    # Plain HTTP redirects to HTTPS.
    plain = request(pebble.http_port, domain, "/x")
    assert (plain.status, plain.headers["Location"]) == (
        308,
        f"https://{domain}:{pebble.tls_port}/x",
    )
    [status] = certs.status(domains=[domain])
    assert status.state == "issued", status
    assert status.not_after is not None
    assert status.not_after > dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    assert "Pebble" in status.issuer
    assert status.reason == ""
    # One entry per domain asked, in order; unknown ones pending.
    other = unique("never")
    assert [s.state for s in certs.status(domains=[other, domain, www])] == [
        "pending",
        "issued",
        "issued",
    ]
    # The stored certificates are not preloaded yet: the config differs from the one
    # the routes make now, which is the reconciler's cue to apply them again.
    assert caddy.routes() == []
    caddy.apply(routes=[route])
    config = admin_get(caddy.settings().admin_address)
    loaded = config["apps"]["tls"]["certificates"]["load_storage"]
    stored = sorted(pair["certificate"].rsplit("/", 1)[-1] for pair in loaded["pairs"])
    assert stored == sorted([f"{domain}.crt", f"{www}.crt"])
    assert config["apps"]["http"]["servers"]["gakwaya"]["automatic_https"] == {
        "disable_redirects": True,
        "ignore_loaded_certificates": True,
    }
    assert caddy.routes() == [route]
    # Caddy took the preloaded pair, and the chain it serves still verifies.
    answer, peer = https_request(pebble.tls_port, domain, pebble.roots_pem(), "/again")
    assert (answer.status, answer.text) == (200, "app")
    assert ("DNS", domain) in peer["subjectAltName"]


@pytest.fixture
def servfail(pebble: Pebble) -> Iterator[Callable[[str], None]]:
    """Make Pebble's DNS lookups of a name fail (SERVFAIL from challtestsrv)."""
    names: list[str] = []

    def set_servfail(name: str) -> None:
        status, body = http_call(
            "POST", pebble.dns.management_url + "/set-servfail", {"host": name + "."}
        )
        assert status == 200, body
        names.append(name)

    yield set_servfail
    for name in names:
        http_call("POST", pebble.dns.management_url + "/clear-servfail", {"host": name + "."})


def test_a_domain_pebble_cannot_validate_is_failed_with_the_cas_reason(
    caddies: Any, pebble: Pebble, upstreams: Callable[[str], Upstream], servfail: Any
) -> None:
    app = upstreams("app")
    good, bad = unique("good"), unique("bad")
    servfail(bad)
    caddy = caddies.make(pebble_settings(pebble))
    certs = caddies.certs(caddy)
    caddy.apply(
        routes=[
            Route(app="a1", domain=good, upstreams=[app.address]),
            Route(app="a2", domain=bad, upstreams=[app.address]),
        ]
    )
    status = wait_state(certs, bad, "failed")
    assert "urn:ietf:params:acme:error" in status.reason, status.reason
    assert bad in status.reason
    assert status.not_after is None
    assert wait_state(certs, good, "issued").not_after is not None
    # The good domain is served although its neighbour failed.
    wait_for(lambda: served(pebble, good) is not None, f"a verified certificate for {good}")


def test_a_ca_that_refuses_connections_is_the_failure_reason(
    caddies: Any, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    domain = unique("refused")
    caddy = caddies.make({"acme_ca": f"https://127.0.0.1:{free_port()}/dir"})
    caddy.apply(routes=[Route(app="a1", domain=domain, upstreams=[app.address])])
    status = wait_state(caddies.certs(caddy), domain, "failed")
    assert "connection refused" in status.reason, status.reason


class AskServer:
    """The panel's ``/api/v1/proxy/ask`` stand-in: 200 for the allowed names only."""

    def __init__(self, allowed: set[str]) -> None:
        self.asked: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                name = (query.get("domain") or [""])[0]
                server.asked.append(name)
                self.send_response(200 if name in allowed else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads what it needs from the requests."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1/proxy/ask"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_on_demand_certificates_are_asked_for_at_the_first_handshake(
    caddies: Any, pebble: Pebble, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    allowed, refused = unique("ondemand"), unique("notknown")
    ask = AskServer({allowed})
    try:
        caddy = caddies.make(pebble_settings(pebble, on_demand_tls=True, on_demand_ask_url=ask.url))
        caddy.apply(
            routes=[
                Route(app="a1", domain=allowed, upstreams=[app.address]),
                Route(app="a2", domain=refused, upstreams=[app.address]),
            ]
        )
        config = admin_get(caddy.settings().admin_address)
        automation = config["apps"]["tls"]["automation"]
        assert automation["on_demand"]["ask"] == ask.url
        assert automation["policies"][0]["on_demand"] is True
        assert ask.asked == []  # nothing obtained before a client comes
        wait_for(lambda: served(pebble, allowed) is not None, "the on-demand certificate")
        assert allowed in ask.asked
        assert served(pebble, refused) is None  # the ask endpoint said no
        assert refused in ask.asked
        assert caddies.certs(caddy).status(domains=[refused])[0].state != "issued"
    finally:
        ask.stop()
