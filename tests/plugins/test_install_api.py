"""The marketplace through the API: ``/api/v1/marketplace/plugins`` and
``/api/v1/plugins/{install,sync,<name>/upgrade,<name>}``, superusers only.

Same real parts as ``test_install.py`` (wheels built by ``uv build``, a signed index on
a loopback ``http.server``, a throwaway environment as ``plugin_python``), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from gakwaya.app import create_app
from gakwaya.db.models import AuditRecord, PluginState
from gakwaya.kernel import Kernel
from gakwaya.plugins.lockfile import LockEntry, read_lock, write_lock
from tests.conftest import World, make_session, make_user
from tests.plugins.samples import plugin
from tests.plugins.wheels import (
    Market,
    freeze,
    imported_version,
    new_key,
    uv_uninstall,
)
from tests.services import free_port

REPO_LOCK = Path(__file__).resolve().parents[2] / "plugins.lock"
DEMO_DISTS = ("gakwaya-greeter", "gakwaya-other", "gakwaya-needy")
MARKET = "/api/v1/marketplace/plugins"
PLUGINS = "/api/v1/plugins"
INJECTIONS = ["x;rm -rf /", "$(touch x)", "`id`", "../etc", "-rf", "a\nb", "a..b"]


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    path = tmp_path / "plugins.lock"
    shutil.copy(REPO_LOCK, path)
    return path


@pytest.fixture
def settings_overrides(
    market: Market, lock_path: Path, venv_python: Path
) -> Iterator[dict[str, Any]]:
    yield {
        "plugin_index_url": market.url,
        "plugin_trusted_keys": [market.key.trusted],
        "plugins_lock": str(lock_path),
        "plugin_python": str(venv_python),
    }
    uv_uninstall(venv_python, *DEMO_DISTS)


def _su(kernel: Kernel) -> dict[str, str]:
    return make_session(kernel, make_user(kernel, superuser=True))


def _state(kernel: Kernel) -> tuple[bytes, str]:
    return Path(kernel.settings.plugins_lock).read_bytes(), freeze(kernel.settings.plugin_python)


def test_search_install_upgrade_remove_sync(client: Any, kernel: Kernel, market: Market) -> None:
    su = _su(kernel)
    python = kernel.settings.plugin_python

    r = client.get(MARKET, params={"q": "greeter"}, headers=su)
    assert r.status_code == 200, r.text
    assert [(i["name"], i["latest"]) for i in r.json()["items"]] == [("gakwaya-greeter", "1.1.0")]
    r = client.get(f"{MARKET}/gakwaya-greeter", headers=su)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["latest"] == "1.1.0" and body["installed"] is None
    assert {v["version"]: v["installable"] for v in body["versions"]} == {
        "2.0.0": False,
        "1.1.0": True,
        "1.0.0": True,
    }

    r = client.post(
        f"{PLUGINS}/install", json={"name": "gakwaya-greeter", "version": "1.0.0"}, headers=su
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["restart_required"] is True
    assert body["changes"][0]["action"] == "installed"
    assert "restart gakwaya (serve and workers)" in body["detail"]
    assert imported_version(python, "gakwaya_greeter") == "1.0.0"
    locked = tomllib.loads(Path(kernel.settings.plugins_lock).read_text())["plugins"]
    assert [(p["name"], p["version"], p["enabled"]) for p in locked] == [
        ("gakwaya-greeter", "1.0.0", True)
    ]

    r = client.post(f"{PLUGINS}/gakwaya-greeter/upgrade", headers=su)
    assert r.status_code == 200, r.text
    assert r.json()["changes"][0]["action"] == "upgraded"
    assert imported_version(python, "gakwaya_greeter") == "1.1.0"
    r = client.post(f"{PLUGINS}/gakwaya-greeter/upgrade", headers=su)
    assert r.status_code == 200 and r.json()["restart_required"] is False

    r = client.delete(f"{PLUGINS}/gakwaya-greeter", headers=su)
    assert r.status_code == 200, r.text
    assert r.json()["changes"][0]["action"] == "removed"
    assert imported_version(python, "gakwaya_greeter") is None

    lock = read_lock(Path(kernel.settings.plugins_lock))
    lock.entries = [
        LockEntry(
            name="gakwaya-other",
            version="1.0.0",
            sha256=market.sha("gakwaya-other", "1.0.0"),
            index=market.url,
            enabled=False,
        )
    ]
    write_lock(Path(kernel.settings.plugins_lock), lock)
    r = client.post(f"{PLUGINS}/sync", headers=su)
    assert r.status_code == 200, r.text
    assert [(c["name"], c["action"]) for c in r.json()["changes"]] == [
        ("gakwaya-other", "installed")
    ]
    assert imported_version(python, "gakwaya_other") == "1.0.0"
    with kernel.db.session() as db:
        state = db.get(PluginState, "gakwaya-other")
        assert state is not None and state.enabled is False  # as the lock says
        actions = db.scalars(
            select(AuditRecord.action).where(AuditRecord.target_type.in_(["plugin", "plugins"]))
        ).all()
    assert {"plugins_install", "plugins_upgrade", "plugins_remove", "plugins_sync"} <= set(actions)


def test_only_superusers(client: Any, kernel: Kernel, world: World) -> None:
    before = _state(kernel)
    calls = [
        ("GET", MARKET, None),
        ("GET", f"{MARKET}/gakwaya-greeter", None),
        ("POST", f"{PLUGINS}/install", {"name": "gakwaya-greeter"}),
        ("POST", f"{PLUGINS}/gakwaya-greeter/upgrade", None),
        ("DELETE", f"{PLUGINS}/gakwaya-greeter", None),
        ("POST", f"{PLUGINS}/sync", None),
    ]
    for method, url, body in calls:
        assert client.request(method, url, json=body).status_code == 401
        r = client.request(method, url, json=body, headers=world.a.sessions["owner"])
        assert r.status_code == 403, (url, r.text)
        assert "superusers only" in r.text
        for scope in ("read", "admin"):
            r = client.request(method, url, json=body, headers=world.a.keys[scope])
            assert r.status_code == 403, (url, scope, r.text)
    assert _state(kernel) == before


@pytest.mark.parametrize("payload", INJECTIONS)
def test_bad_input_names_the_field(client: Any, kernel: Kernel, payload: str) -> None:
    su = _su(kernel)
    before = _state(kernel)
    for body, field in (
        ({"name": payload}, "name"),
        ({"name": "gakwaya-greeter", "version": payload}, "version"),
    ):
        r = client.post(f"{PLUGINS}/install", json=body, headers=su)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == field, r.text
    encoded = quote(payload, safe="")
    for method, url in (
        ("GET", f"{MARKET}/{encoded}"),
        ("POST", f"{PLUGINS}/{encoded}/upgrade"),
        ("DELETE", f"{PLUGINS}/{encoded}"),
    ):
        r = client.request(method, url, headers=su)
        # A payload with a slash cannot even reach the route: 404 from the router.
        assert r.status_code in (404, 422) if "/" in payload else r.status_code == 422, (
            url,
            r.text,
        )
        if r.status_code == 422:
            assert r.json()["errors"][0]["field"] == "name"
    assert _state(kernel) == before


def test_malformed_bodies(client: Any, kernel: Kernel) -> None:
    su = _su(kernel)
    before = _state(kernel)
    for body in ({}, {"name": 3}, {"name": "gakwaya-greeter", "extra": 1}, {"name": "x" * 201}):
        r = client.post(f"{PLUGINS}/install", json=body, headers=su)
        assert r.status_code in (400, 422), (body, r.text)
        assert r.json()["errors"], r.text
    r = client.get(MARKET, params={"q": "x" * 201}, headers=su)
    assert r.status_code in (400, 422), r.text
    assert r.json()["errors"][0]["field"] == "q", r.text
    assert _state(kernel) == before


def test_refusals_map_to_4xx_and_5xx(client: Any, kernel: Kernel, market: Market) -> None:
    su = _su(kernel)
    before = _state(kernel)

    r = client.post(f"{PLUGINS}/install", json={"name": "gakwaya-nope"}, headers=su)
    assert r.status_code == 404 and "no plugin named" in r.json()["detail"]
    r = client.get(f"{MARKET}/gakwaya-nope", headers=su)
    assert r.status_code == 404
    r = client.post(f"{PLUGINS}/gakwaya-greeter/upgrade", headers=su)
    assert r.status_code == 404 and "install it first" in r.json()["detail"]
    r = client.delete(f"{PLUGINS}/gakwaya-greeter", headers=su)
    assert r.status_code == 404

    r = client.post(
        f"{PLUGINS}/install", json={"name": "gakwaya-greeter", "version": "2.0.0"}, headers=su
    )
    assert r.status_code == 409 and "needs core API" in r.json()["detail"]
    r = client.post(f"{PLUGINS}/install", json={"name": "gakwaya-needy"}, headers=su)
    assert r.status_code == 409 and "definitely-not-installed-dist" in r.json()["detail"]

    # A tampered wheel (same size, other bytes): refused with the reason.
    wheel = market.directory / market.wheels.greeter["1.1.0"].name
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    r = client.post(f"{PLUGINS}/install", json={"name": "gakwaya-greeter"}, headers=su)
    assert r.status_code == 409 and "sha256" in r.json()["detail"]

    # A tampered index.
    index = market.directory / "index.json"
    signed = index.read_bytes()
    at = signed.index(b"1.1.0") + 4
    index.write_bytes(signed[:at] + b"9" + signed[at + 1 :])
    r = client.get(MARKET, headers=su)
    assert r.status_code == 409 and "bad signature" in r.json()["detail"]
    index.write_bytes(signed)

    # Signed by a key this panel does not trust.
    kernel.settings.plugin_trusted_keys = [new_key().trusted]
    r = client.post(f"{PLUGINS}/install", json={"name": "gakwaya-other"}, headers=su)
    assert r.status_code == 409 and "trusted key" in r.json()["detail"]
    kernel.settings.plugin_trusted_keys = []
    r = client.get(MARKET, headers=su)
    assert r.status_code == 409 and "plugin_trusted_keys" in r.json()["detail"]
    kernel.settings.plugin_trusted_keys = [market.key.trusted]

    # The index cannot be reached: 502.
    kernel.settings.plugin_index_url = f"http://127.0.0.1:{free_port()}/index.json"
    r = client.get(MARKET, headers=su)
    assert r.status_code == 502, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "cannot fetch the plugin index" in r.json()["detail"]
    r = client.post(f"{PLUGINS}/sync", headers=su)
    assert r.status_code == 200  # an empty lock needs no index
    kernel.settings.plugin_index_url = ""
    r = client.post(f"{PLUGINS}/install", json={"name": "gakwaya-other"}, headers=su)
    assert r.status_code == 409 and "plugin_index_url" in r.json()["detail"]

    assert _state(kernel) == before


def test_disable_is_recorded_in_the_lock(kernel: Kernel, market: Market) -> None:
    # The host knows the plugin gakwaya-greeter (as it would after a restart), which the
    # marketplace installed under the same name.
    k = Kernel(kernel.settings, extra_plugins=[("x", plugin("gakwaya-greeter"))])
    try:
        with TestClient(create_app(k, background=False)) as c:
            su = _su(k)
            r = c.post(f"{PLUGINS}/install", json={"name": "gakwaya-greeter"}, headers=su)
            assert r.status_code == 200, r.text
            r = c.post(f"{PLUGINS}/gakwaya-greeter/disable", headers=su)
            assert r.status_code == 200, r.text
            assert "plugins.lock" in r.json()["detail"]
            entry = read_lock(Path(k.settings.plugins_lock)).get("gakwaya-greeter")
            assert entry is not None and entry.enabled is False
            # An upgrade keeps the operator's choice.
            r = c.post(
                f"{PLUGINS}/install",
                json={"name": "gakwaya-greeter", "version": "1.0.0"},
                headers=su,
            )
            assert r.status_code == 200, r.text
            assert r.json()["changes"][0]["enabled"] is False
            entry = read_lock(Path(k.settings.plugins_lock)).get("gakwaya-greeter")
            assert entry is not None and entry.enabled is False
            r = c.post(f"{PLUGINS}/gakwaya-greeter/enable", headers=su)
            assert r.status_code == 200, r.text
            entry = read_lock(Path(k.settings.plugins_lock)).get("gakwaya-greeter")
            assert entry is not None and entry.enabled is True
    finally:
        k.close()


def test_schema_lists_the_operations(client: Any) -> None:
    schema = client.get("/schema/openapi.json").json()
    ids = {
        op["operationId"]
        for item in schema["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {
        "marketplace_search",
        "marketplace_show",
        "plugins_install",
        "plugins_upgrade",
        "plugins_remove",
        "plugins_sync",
    } <= ids
