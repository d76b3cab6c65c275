"""The whole path with real parts: an app deployed on the Docker engine, a custom domain
verified by its TXT record (challtestsrv), Debian's Caddy run by the panel
(``proxy:caddy``) getting the domain's certificate from Pebble, and the app fetched over
HTTPS with the chain checked against Pebble's root; then a redeploy switches what the
domain serves, a Caddy killed and restarted serves it again, a hand-deleted route comes
back with the reconciler, and a removed domain is no longer served."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gakwaya.deploy.reconciler import reconcile
from gakwaya.kernel import Kernel
from gakwaya.plugins import settings as plugin_settings
from gakwaya.testing.acme import caddy_plugin_settings
from tests.deploy.pipeline_helpers import (
    API,
    clean_engine,
    deploy,
    fixture_image,
    make_app,
    set_env,
    succeeded,
    wait_deployment,
)

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def image(gakwaya_base_image: str) -> Iterator[str]:
    with fixture_image("python-web", f"gakwaya-test/python-web:https-{RUN}") as tag:
        yield tag


@pytest.fixture
def settings_overrides(challtestsrv: Any) -> dict[str, Any]:
    return {
        "deploy_drain_seconds": 0,
        "reconcile_interval": 3600,
        "dns_resolver": challtestsrv.dns_address,
    }


@pytest.fixture
def caddy(kernel: Kernel, pebble: Any) -> Iterator[Any]:
    """The panel's managed Caddy on Pebble's validation ports, Pebble as its CA."""
    with kernel.db.transaction() as db:
        plugin_settings.update(
            kernel, db, "gakwaya-caddy", caddy_plugin_settings(pebble), by="test"
        )
    proxy = kernel.plugins.provider("proxy:caddy")
    assert proxy is not None
    proxy.start(log=lambda _line: None)
    try:
        yield proxy
    finally:
        proxy.stop()
        clean_engine(kernel.installation_id)


def https_get(port: int, domain: str, cadata: str) -> tuple[int, str]:
    """GET / from Caddy on loopback as a browser would reach ``domain``: SNI and Host,
    the chain verified against ``cadata`` and the name against the certificate."""
    context = ssl.create_default_context(cadata=cadata)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


def served(port: int, domain: str, cadata: str, expect: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            status, body = https_get(port, domain, cadata)
            if status == 200 and expect in body:
                return body
            last = f"{status} {body[:200]}"
        except (OSError, ssl.SSLError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"https://{domain} never served {expect!r}; last: {last}")


def test_deploy_verify_certificate_and_serve_over_https(
    kernel: Kernel, client: Any, world: Any, image: str, caddy: Any, pebble: Any, challtestsrv: Any
) -> None:
    owner = dict(world.a.sessions["owner"])
    app_id = make_app(kernel, world.a.org, source_type="image", image=image)
    succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))

    name = f"shop-{RUN}.e2e.test"
    r = client.post(f"{API}/apps/{app_id}/domains", json={"name": name}, headers=owner)
    assert r.status_code == 201, r.text
    domain = r.json()
    txt = next(rec for rec in domain["dns_records"] if rec["type"] == "TXT")
    assert txt["name"] == f"_gakwaya-challenge.{name}"
    challtestsrv.set_txt(txt["name"], txt["value"])
    try:
        r = client.post(f"{API}/domains/{domain['id']}/verify", headers=owner)
        assert r.status_code == 200, r.text
    finally:
        challtestsrv.clear_txt(txt["name"])

    # Issued by Pebble, served by Caddy, verified like a browser would.
    roots = pebble.roots_pem()
    assert "release=v1" in served(pebble.tls_port, name, roots, "python-web release=v1")
    deadline = time.monotonic() + 30
    while True:
        cert = client.get(f"{API}/domains/{domain['id']}", headers=owner).json()["certificate"]
        if cert["state"] == "issued" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert cert["state"] == "issued", cert
    assert "Pebble" in cert["issuer"] and cert["not_after"]

    # Plain HTTP for the domain redirects to HTTPS.
    plain = httpx.get(
        f"http://127.0.0.1:{pebble.http_port}/x", headers={"Host": name}, follow_redirects=False
    )
    assert plain.status_code in (301, 308) and plain.headers["location"].startswith(
        f"https://{name}"
    )

    # A redeploy switches what the domain serves.
    set_env(kernel, app_id, "GREETING", "bonjour")
    succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    served(pebble.tls_port, name, roots, "release=v2 greeting=bonjour")

    # Caddy killed: started again, it resumes its last configuration.
    pid = int(caddy.state()["pid"])
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    caddy.start(log=lambda _line: None)
    served(pebble.tls_port, name, roots, "greeting=bonjour")

    # A route deleted by hand comes back with the reconciler.
    admin = f"http://{caddy.state()['admin']}"
    routes = httpx.get(f"{admin}/config/apps/http/servers/gakwaya/routes").json()
    index = next(i for i, route in enumerate(routes) if name in str(route))
    assert httpx.delete(f"{admin}/config/apps/http/servers/gakwaya/routes/{index}").is_success
    with pytest.raises(AssertionError):
        served(pebble.tls_port, name, roots, "greeting=bonjour", timeout=1)
    report = reconcile(kernel)
    assert any("proxy:caddy" in line for line in report.drift), report
    served(pebble.tls_port, name, roots, "greeting=bonjour")

    # Removed: the domain is no longer served.
    r = client.delete(f"{API}/domains/{domain['id']}", headers=owner)
    assert r.status_code in (200, 204), r.text
    with pytest.raises(AssertionError):
        served(pebble.tls_port, name, roots, "greeting=bonjour", timeout=2)
