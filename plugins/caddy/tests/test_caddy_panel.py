"""gakwaya-caddy in the panel: loaded from its entry point with its settings, and
driven by ``gakwaya proxy start|status|routes|stop`` (the CLI's own process, as an
operator runs it), serving the panel's own domain."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from caddy_testlib import free_port, request, wait_for
from click.testing import CliRunner

from gakwaya.cli import main
from gakwaya.kernel import Kernel
from gakwaya.plugins import settings as plugin_settings
from gakwaya_caddy.plugin import AcmeCertificates, CaddyProxy
from gakwaya_caddy.process import _is_caddy
from gakwaya_sdk.providers import ManagedProxy, Route

PANEL_DOMAIN = "panel.example.test"


@pytest.fixture
def panel_port() -> int:
    return free_port()


@pytest.fixture
def gakwaya_settings_overrides(panel_port: int) -> dict[str, Any]:
    # The panel's own route, plain HTTP (no CA in this test), to the panel's port.
    return {"panel_domain": PANEL_DOMAIN, "domains_tls": False, "port": panel_port}


@pytest.fixture
def caddy_values(gakwaya_kernel: Kernel) -> Iterator[dict[str, Any]]:
    values = {
        "admin_address": f"127.0.0.1:{free_port()}",
        "http_port": free_port(),
        "https_port": free_port(),
        "acme_ca": f"https://127.0.0.1:{free_port()}/dir",
    }
    with gakwaya_kernel.db.session(write=True) as db:
        plugin_settings.update(gakwaya_kernel, db, "gakwaya-caddy", values, by="test")
        db.commit()
    yield values
    # Whatever the test did, no Caddy outlives it.
    pid_file = gakwaya_kernel.plugins.panel.data_dir("gakwaya-caddy") / "caddy.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        if _is_caddy(pid):
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"Caddy {pid} was left running")


@pytest.fixture
def cli(gakwaya_kernel: Kernel, panel_port: int) -> Any:
    s = gakwaya_kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
        "GAKWAYA_PANEL_DOMAIN": PANEL_DOMAIN,
        "GAKWAYA_DOMAINS_TLS": "false",
        "GAKWAYA_PORT": str(panel_port),
    }

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_the_plugin_loads_with_its_providers(gakwaya_kernel: Kernel, gakwaya_panel: Any) -> None:
    status = gakwaya_kernel.plugins.statuses["gakwaya-caddy"]
    assert status.status == "active", status.reason
    assert set(status.provides) == {"proxy:caddy", "certs:acme"}
    proxy = gakwaya_panel.provider("proxy:caddy")
    assert isinstance(proxy, CaddyProxy) and isinstance(proxy, ManagedProxy)
    assert isinstance(gakwaya_panel.provider("certs:acme"), AcmeCertificates)
    settings = proxy.settings()
    assert settings.admin_address == "127.0.0.1:2019"  # the manifest's defaults
    assert settings.data_dir == gakwaya_panel.data_dir("gakwaya-caddy")
    assert settings.storage_dir == settings.data_dir / "storage"
    # No Caddy running and nothing to serve: nothing to do, nothing served.
    proxy.apply(routes=[Route(app="a1", port=20001, upstreams=["127.0.0.1:1"])])


def test_proxy_commands_run_caddy_and_serve_the_panels_domain(
    cli: Any,
    caddy_values: dict[str, Any],
    gakwaya_panel: Any,
    panel_port: int,
    upstreams: Any,
    docker_engine: None,
) -> None:
    values = caddy_values
    # A stand-in for the panel's listener (the CLI's process serves nothing).
    panel = upstreams("the panel")
    r = cli("proxy", "start")
    assert r.exit_code == 0, r.output
    assert "runs (pid" in r.output
    assert "routes applied: 1 (1 with a domain)" in r.output
    proxy = gakwaya_panel.provider("proxy:caddy")
    panel_route = Route(
        app="panel",
        upstreams=[f"127.0.0.1:{panel_port}"],
        domain=PANEL_DOMAIN,
        tls=False,
        health_path="/healthz",
    )
    assert proxy.routes() == [panel_route]
    r = cli("proxy", "start")  # already running: nothing but the routes again
    assert r.exit_code == 0 and "already answers" in r.output, r.output

    r = cli("proxy", "status")
    assert r.exit_code == 0, r.output
    assert "proxy:caddy" in r.output and "running: True" in r.output
    assert f"admin: {values['admin_address']}" in r.output
    assert f"{PANEL_DOMAIN}\tpanel\t-> 127.0.0.1:{panel_port}" in r.output
    r = cli("proxy", "status", "--proxy", "proxy:caddy", "--json")
    assert r.exit_code == 0, r.output
    [line] = r.output.splitlines()
    out = json.loads(line)
    assert out["state"]["running"] is True and out["state"]["pid"] > 0
    assert out["routes"][0]["domain"] == PANEL_DOMAIN
    r = cli("proxy", "routes", "--proxy", "proxy:caddy", "--json")
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["domain"] for x in r.output.splitlines()] == [PANEL_DOMAIN]

    # Served: the panel's domain reaches the panel's port.
    proxy.apply(routes=[Route(**{**_fields(panel_route), "upstreams": [panel.address]})])
    assert request(values["http_port"], PANEL_DOMAIN).text == "the panel"
    r = cli("proxy", "routes")
    assert f"proxy:caddy\t{PANEL_DOMAIN}\tpanel\t-> {panel.address}" in r.output

    r = cli("proxy", "stop")
    assert r.exit_code == 0 and "proxy:caddy: stopped" in r.output, r.output
    wait_for(lambda: proxy.state()["running"] is False, "Caddy to stop")
    r = cli("proxy", "status", "--proxy", "proxy:caddy")
    assert "running: False" in r.output and "routes: 0" in r.output
    r = cli("proxy", "start", "--proxy", "proxy:nothing")
    assert r.exit_code == 2 and "--proxy: no active proxy provides 'proxy:nothing'" in r.output


def _fields(route: Route) -> dict[str, Any]:
    return {f: getattr(route, f) for f in route.__struct_fields__}


def test_proxy_start_reports_a_bad_setting(cli: Any, gakwaya_kernel: Kernel) -> None:
    with gakwaya_kernel.db.session(write=True) as db:
        plugin_settings.update(
            gakwaya_kernel, db, "gakwaya-caddy", {"admin_address": "0.0.0.0:2019"}, by="test"
        )
        db.commit()
    r = cli("proxy", "start")
    assert r.exit_code == 1
    assert "proxy:caddy: start: setting admin_address: '0.0.0.0:2019' must be" in r.output


def test_the_reconciler_gives_a_restarted_caddy_its_routes_back(
    cli: Any, caddy_values: dict[str, Any], gakwaya_panel: Any, docker_engine: None
) -> None:
    r = cli("proxy", "start")
    assert r.exit_code == 0, r.output
    proxy = gakwaya_panel.provider("proxy:caddy")
    served = proxy.routes()
    assert [route.domain for route in served] == [PANEL_DOMAIN]
    r = cli("reconcile")
    assert r.exit_code == 0 and "proxy:caddy" not in r.output, r.output
    # Stopped, its saved config lost, started again: it serves nothing…
    r = cli("proxy", "stop")
    assert r.exit_code == 0, r.output
    (proxy.settings().data_dir / "config" / "caddy" / "autosave.json").unlink()
    proxy.start(log=lambda line: None)
    try:
        assert proxy.routes() == []
        # …until the reconciler's next pass.
        r = cli("reconcile")
        assert r.exit_code == 0, r.output
        assert "drift: proxy:caddy: routes differed; applied again" in r.output
        assert proxy.routes() == served
    finally:
        proxy.stop()
