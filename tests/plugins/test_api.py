"""``/api/v1/plugins``: superusers only; enable/disable persist and survive a new kernel."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from gakwaya.cli import main
from gakwaya.db.models import AuditRecord, PluginState
from gakwaya.kernel import Kernel
from tests.conftest import World, make_session, make_user
from tests.plugins.samples import plugin

API = "/api/v1/plugins"


def _su(kernel: Kernel) -> dict[str, str]:
    return make_session(kernel, make_user(kernel, superuser=True))


def test_list_for_a_superuser(client: Any, kernel: Kernel) -> None:
    r = client.get(API, headers=_su(kernel))
    assert r.status_code == 200, r.text
    items = {i["name"]: i for i in r.json()["items"]}
    assert items["core.identity"]["status"] == "active"
    assert items["core.identity"]["essential"] is True
    assert "register_routes" in items["core.plugins"]["hooks"]


def test_others_are_refused(client: Any, kernel: Kernel, world: World) -> None:
    owner = world.a.sessions["owner"]
    for method, url in (
        ("GET", API),
        ("POST", f"{API}/core.jobs/enable"),
        ("POST", f"{API}/core.jobs/disable"),
    ):
        assert client.request(method, url).status_code == 401
        r = client.request(method, url, headers=owner)
        assert r.status_code == 403, r.text
        assert "superusers only" in r.text
        for scope in ("read", "admin"):
            r = client.request(method, url, headers=world.a.keys[scope])
            assert r.status_code == 403, (scope, r.text)


def test_a_superusers_key_is_refused(client: Any, kernel: Kernel, world: World) -> None:
    from tests.conftest import make_key

    su = make_user(kernel, superuser=True)
    org = world.a.org
    from gakwaya.db.models import Membership

    with kernel.db.transaction() as db:
        db.add(Membership(org_id=org.id, user_id=su.id, role="owner"))
    headers = make_key(kernel, su, org, ["admin"])
    r = client.get(API, headers=headers)
    assert r.status_code == 403
    assert "API keys cannot be used" in r.text


def test_disable_persists_and_a_new_kernel_honours_it(client: Any, kernel: Kernel) -> None:
    # A plugin known to this kernel: passed in, as an installed one would be found.
    k = Kernel(kernel.settings, extra_plugins=[("x", plugin("optional-thing"))])
    try:
        from litestar.testing import TestClient

        from gakwaya.app import create_app

        with TestClient(create_app(k, background=False)) as c:
            headers = _su(k)
            r = c.post(f"{API}/optional-thing/disable", headers=headers)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["enabled"] is False and body["restart_required"] is True
            assert "restart" in body["detail"]
            # Still active in this process: the change applies at restart.
            assert k.plugins.statuses["optional-thing"].status == "active"
    finally:
        k.close()
    with kernel.db.session() as db:
        row = db.get(PluginState, "optional-thing")
        assert row is not None and row.enabled is False
        assert row.changed_by.endswith("@example.com")
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "plugins_disable")).all()
        assert [a.outcome for a in audit] == ["success"]
    again = Kernel(kernel.settings, extra_plugins=[("x", plugin("optional-thing"))])
    try:
        status = again.plugins.statuses["optional-thing"]
        assert (status.status, status.reason) == ("disabled", "disabled by an operator")
        # Enable again; the kernel after that loads it.
        from gakwaya.plugins.state import set_enabled

        set_enabled(again.db, again.plugins, "optional-thing", enabled=True, by="test")
    finally:
        again.close()
    third = Kernel(kernel.settings, extra_plugins=[("x", plugin("optional-thing"))])
    try:
        assert third.plugins.statuses["optional-thing"].status == "active"
    finally:
        third.close()


def test_essential_cannot_be_disabled(client: Any, kernel: Kernel) -> None:
    r = client.post(f"{API}/core.identity/disable", headers=_su(kernel))
    assert r.status_code == 409, r.text
    assert "essential" in r.text
    with kernel.db.session() as db:
        assert db.get(PluginState, "core.identity") is None


def test_unknown_and_bad_names(client: Any, kernel: Kernel) -> None:
    headers = _su(kernel)
    r = client.post(f"{API}/not-installed/enable", headers=headers)
    assert r.status_code == 404, r.text
    r = client.post(f"{API}/-bad-/enable", headers=headers)
    assert r.status_code == 422, r.text
    assert "name" in r.text


# The command line -------------------------------------------------------------------------


def _cli(kernel: Kernel, *args: str) -> Any:
    s = kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
        "GAKWAYA_PLUGIN_MODULES": "tests.plugins.devplugin",
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_list_enable_disable(kernel: Kernel) -> None:
    import json

    r = _cli(kernel, "plugins", "list", "--json")
    assert r.exit_code == 0, r.output
    items = {i["name"]: i for i in json.loads(r.output)}
    assert items["devplugin"]["status"] == "active"
    assert items["core.jobs"]["essential"] is True

    r = _cli(kernel, "plugins", "disable", "devplugin")
    assert r.exit_code == 0, r.output
    assert "restart" in r.output
    r = _cli(kernel, "plugins", "list")
    assert r.exit_code == 0
    line = next(x for x in r.output.splitlines() if x.startswith("devplugin"))
    assert "disabled" in line and "disabled by an operator" in line

    r = _cli(kernel, "plugins", "disable", "core.jobs")
    assert r.exit_code == 1
    assert "essential" in r.output

    r = _cli(kernel, "plugins", "enable", "nope")
    assert r.exit_code == 1 and "not found" in r.output

    r = _cli(kernel, "plugins", "enable", "devplugin")
    assert r.exit_code == 0
    with kernel.db.session() as db:
        row = db.get(PluginState, "devplugin")
        assert row is not None and (row.enabled, row.changed_by) == (True, "cli")
