"""Plugin settings: storage, API, CLI, and what a plugin reads through ``panel``.

The kernel of this module loads ``tests.plugins.settings_probe``, which declares
installation and organization settings (one secret) and reads them from a route,
a job and an event subscriber.
"""

from __future__ import annotations

import json
import re
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gakwaya.app import create_app
from gakwaya.cli import main
from gakwaya.db.models import AuditRecord, Job, JobLog, PluginSetting
from gakwaya.kernel import Kernel
from gakwaya.orgs.events import MemberAdded
from gakwaya.plugins import settings as service
from gakwaya.settings import Settings
from gakwaya_sdk.manifest import load_manifest
from tests.conftest import World, make_key, make_org, make_session, make_user
from tests.plugins import settings_probe as probe
from tests.plugins.samples import plugin

API = "/api/v1/plugins/probe/settings"
ACME = "/api/v1/orgs/acme/plugins/probe/settings"
GLOBEX = "/api/v1/orgs/globex/plugins/probe/settings"
SECRET = "s3cr3t-token-value-Zq9"
PAYLOADS = [
    "a; rm -rf /",
    "$(touch /tmp/pwned)",
    "`id`",
    "../../etc/passwd",
    "-rf",
    "line one\nline two",
    "tab\tand ' \" quotes",
]


@pytest.fixture
def kernel(settings: Settings) -> Iterator[Kernel]:
    """The suite's kernel, with the probe plugin loaded as an object."""
    k = Kernel.create(settings, extra_plugins=[("probe", probe)])
    yield k
    k.close()


@pytest.fixture(autouse=True)
def _clear_seen() -> Iterator[None]:
    probe.seen.clear()
    yield
    probe.seen.clear()


def su(kernel: Kernel) -> dict[str, str]:
    return make_session(kernel, make_user(kernel, superuser=True))


def rows(kernel: Kernel) -> list[PluginSetting]:
    with kernel.db.session() as db:
        return list(db.scalars(select(PluginSetting).order_by(PluginSetting.id)))


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in body["settings"]}


# The installation's settings ------------------------------------------------------------


def test_installation_view_set_and_unset(client: TestClient[Litestar], kernel: Kernel) -> None:
    headers = su(kernel)
    r = client.get(API, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plugin"] == "probe" and body["org"] is None
    items = by_name(body)
    assert list(items) == [s["name"] for s in probe.MANIFEST["settings"]]
    assert items["endpoint"] == {
        "name": "endpoint",
        "type": "str",
        "scope": "installation",
        "secret": False,
        "required": False,
        "description": "Where the service answers.",
        "default": "https://api.example.com",
        "value": "https://api.example.com",
        "is_set": False,
        "source": "default",
    }
    assert body["missing"] == ["token"]

    values = {
        "endpoint": "https://eu.example.net",
        "port": 8443,
        "tags": ["a", "b"],
        "ratio": 2.5,
        "region": "us",
        "token": SECRET,
    }
    r = client.put(API, json={"values": values}, headers=headers)
    assert r.status_code == 200, r.text
    items = by_name(r.json())
    assert r.json()["missing"] == []
    for name, value in values.items():
        assert items[name]["is_set"] is True and items[name]["source"] == "installation"
        assert items[name]["value"] == (None if name == "token" else value)
    assert items["verbose"]["source"] == "default"
    assert SECRET not in r.text
    assert service.effective_settings(kernel, "probe") == {**values, "verbose": False}

    # null: back to the manifest's default.
    r = client.put(API, json={"values": {"port": None, "token": None}}, headers=headers)
    assert r.status_code == 200, r.text
    items = by_name(r.json())
    assert (items["port"]["value"], items["port"]["source"]) == (443, "default")
    assert items["token"]["is_set"] is False
    assert r.json()["missing"] == ["token"]
    assert {row.name for row in rows(kernel)} == {"endpoint", "tags", "ratio", "region"}

    # Setting the same value again updates the one row.
    r = client.put(API, json={"values": {"region": "ap"}}, headers=headers)
    assert r.status_code == 200, r.text
    assert [row.value for row in rows(kernel) if row.name == "region"] == ['"ap"']


def test_installation_routes_are_for_superusers(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    for method, body in (("GET", None), ("PUT", {"values": {"port": 1}})):
        assert client.request(method, API, json=body).status_code == 401
        r = client.request(method, API, json=body, headers=world.a.sessions["owner"])
        assert r.status_code == 403, r.text
        assert "superusers only" in r.text
        for scope in ("read", "admin"):
            r = client.request(method, API, json=body, headers=world.a.keys[scope])
            assert r.status_code == 403, (scope, r.text)
    assert rows(kernel) == []


def test_unknown_disabled_and_bad_plugin_names(
    client: TestClient[Litestar], kernel: Kernel, world: World, settings: Settings
) -> None:
    headers = su(kernel)
    for url in ("/api/v1/plugins/nope/settings", "/api/v1/orgs/acme/plugins/nope/settings"):
        h = headers if url.startswith("/api/v1/plugins") else world.a.sessions["admin"]
        assert client.get(url, headers=h).status_code == 404
        r = client.put(url, json={"values": {}}, headers=h)
        assert r.status_code == 404, r.text
    r = client.get("/api/v1/plugins/-bad-/settings", headers=headers)
    assert r.status_code == 422 and "name" in r.text
    # A disabled plugin is not running: its settings are not offered.
    sleepy = plugin("sleepy", settings=[{"name": "level", "type": "int", "default": 1}])
    disabled = Kernel(
        msgspec.structs.replace(settings, disabled_plugins=["sleepy"]),
        extra_plugins=[("x", sleepy)],
    )
    try:
        assert disabled.plugins.statuses["sleepy"].status == "disabled"
        with TestClient(create_app(disabled, background=False)) as c:
            r = c.get("/api/v1/plugins/sleepy/settings", headers=su(disabled))
            assert r.status_code == 404, r.text
            assert "not active" in r.text
    finally:
        disabled.close()


# Validation: all or nothing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("port", "443", "must be of type int"),
        ("port", 1.5, "must be of type int"),
        ("port", True, "must be of type int"),
        ("verbose", 1, "must be of type bool"),
        ("verbose", "true", "must be of type bool"),
        ("tags", ["a", 1], "must be of type list[str]"),
        ("tags", "a,b", "must be of type list[str]"),
        ("ratio", "0.5", "must be of type float"),
        ("endpoint", 5, "must be of type str"),
        ("endpoint", {"x": 1}, "must be of type str"),
    ],
)
def test_a_wrong_type_names_field_and_rule_and_writes_nothing(
    client: TestClient[Litestar], kernel: Kernel, name: str, value: Any, rule: str
) -> None:
    r = client.put(
        API, json={"values": {"region": "us", "token": SECRET, name: value}}, headers=su(kernel)
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"] == [
        {"field": f"values.{name}", "rule": rule, "message": f"values.{name}: {rule}"}
    ]
    assert rows(kernel) == []
    assert service.effective_settings(kernel, "probe")["region"] == "eu"


def test_every_broken_entry_is_listed(client: TestClient[Litestar], kernel: Kernel) -> None:
    r = client.put(
        API,
        json={"values": {"nope": 1, "port": "x", "region": "us", "$(id)": 1}},
        headers=su(kernel),
    )
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["rule"] for e in r.json()["errors"]}
    assert errors == {
        "values.nope": "is not a setting of plugin 'probe'",
        "values.port": "must be of type int",
        "values.$(id)": "is not a setting of plugin 'probe'",
    }
    assert rows(kernel) == []


def test_malformed_bodies(client: TestClient[Litestar], kernel: Kernel) -> None:
    headers = su(kernel)
    for body in ({}, {"values": 5}, {"values": {}, "extra": 1}, [1]):
        r = client.put(API, json=body, headers=headers)
        assert r.status_code in (400, 422), (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = client.put(API, json={"values": {"endpoint": "x" * 70_000}}, headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "values.endpoint"
    assert "at most 65536 bytes" in r.text
    assert rows(kernel) == []


def test_values_are_data_stored_as_given(client: TestClient[Litestar], kernel: Kernel) -> None:
    """Nothing a setting holds reaches a process, a path or a shell in the kernel:
    it is stored and handed back unchanged."""
    headers = su(kernel)
    for payload in PAYLOADS:
        r = client.put(
            API, json={"values": {"endpoint": payload, "tags": [payload, payload]}}, headers=headers
        )
        assert r.status_code == 200, (payload, r.text)
        assert by_name(r.json())["endpoint"]["value"] == payload
        r = client.get(API, headers=headers)
        assert by_name(r.json())["tags"]["value"] == [payload, payload]
        effective = service.effective_settings(kernel, "probe")
        assert (effective["endpoint"], effective["tags"]) == (payload, [payload, payload])
    # A secret too: stored encrypted, decrypted unchanged.
    for payload in PAYLOADS:
        r = client.put(API, json={"values": {"token": payload}}, headers=headers)
        assert r.status_code == 200, r.text
        assert service.effective_settings(kernel, "probe")["token"] == payload


# Organizations ---------------------------------------------------------------------------


def test_organization_values_override_the_installation(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    r = client.put(
        API, json={"values": {"region": "us", "endpoint": "https://x.test"}}, headers=su(kernel)
    )
    assert r.status_code == 200, r.text
    admin = world.a.sessions["admin"]

    r = client.get(ACME, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["org"] == "acme"
    # Only organization-scoped settings are shown to an organization.
    assert list(by_name(body)) == ["region", "token", "verbose"]
    assert by_name(body)["region"]["source"] == "installation"
    assert by_name(body)["region"]["value"] == "us"
    assert body["missing"] == ["token"]

    r = client.put(
        ACME, json={"values": {"region": "af", "token": SECRET, "verbose": True}}, headers=admin
    )
    assert r.status_code == 200, r.text
    items = by_name(r.json())
    assert (items["region"]["value"], items["region"]["source"]) == ("af", "organization")
    assert (items["token"]["value"], items["token"]["is_set"]) == (None, True)
    assert r.json()["missing"] == []
    assert SECRET not in r.text

    acme, globex = world.a.org.id, world.b.org.id
    assert service.effective_settings(kernel, "probe", org_id=acme) == {
        "endpoint": "https://x.test",
        "region": "af",
        "token": SECRET,
        "port": 443,
        "verbose": True,
        "tags": [],
        "ratio": 0.5,
    }
    # Another organization gets the installation's values, not acme's.
    other = service.effective_settings(kernel, "probe", org_id=globex)
    assert (other["region"], other["token"], other["verbose"]) == ("us", None, False)
    r = client.get(GLOBEX, headers=world.b.sessions["admin"])
    assert by_name(r.json())["region"]["source"] == "installation"
    assert by_name(r.json())["token"]["is_set"] is False
    # Without an organization: the installation's values.
    assert service.effective_settings(kernel, "probe")["region"] == "us"

    # null: back to the installation's value.
    r = client.put(ACME, json={"values": {"region": None}}, headers=admin)
    assert r.status_code == 200, r.text
    assert by_name(r.json())["region"]["source"] == "installation"
    assert service.effective_settings(kernel, "probe", org_id=acme)["region"] == "us"


def test_an_organization_cannot_set_installation_settings(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    r = client.put(
        ACME,
        json={"values": {"region": "af", "endpoint": "https://evil.test", "port": 1}},
        headers=world.a.sessions["owner"],
    )
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["rule"] for e in r.json()["errors"]}
    assert errors == {
        "values.endpoint": "is installation-wide; a superuser sets it",
        "values.port": "is installation-wide; a superuser sets it",
    }
    assert rows(kernel) == []


def test_who_may_read_and_write_an_organizations_settings(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    body = {"values": {"region": "af"}}
    # Another organization's members and keys: 404, whatever their role there.
    for headers in (world.b.sessions["owner"], world.b.keys["admin"]):
        assert client.get(ACME, headers=headers).status_code == 404
        r = client.put(ACME, json=body, headers=headers)
        assert r.status_code == 404, r.text
        assert "Acme" not in r.text
    # Below admin: 403.
    for role in ("developer", "viewer"):
        for method in ("GET", "PUT"):
            r = client.request(method, ACME, json=body, headers=world.a.sessions[role])
            assert r.status_code == 403, (role, method, r.text)
            assert "'admin'" in r.text
    # A read key reads (its owner is an owner) and cannot write; a write key writes.
    assert client.get(ACME, headers=world.a.keys["read"]).status_code == 200
    r = client.put(ACME, json=body, headers=world.a.keys["read"])
    assert r.status_code == 403, r.text
    r = client.put(ACME, json=body, headers=world.a.keys["deploy"])
    assert r.status_code == 403, r.text
    assert rows(kernel) == []
    r = client.put(ACME, json=body, headers=world.a.keys["write"])
    assert r.status_code == 200, r.text
    r = client.put(ACME, json={"values": {"verbose": True}}, headers=world.a.sessions["admin"])
    assert r.status_code == 200, r.text
    assert sorted((row.name, row.org_id) for row in rows(kernel)) == [
        ("region", world.a.org.id),
        ("verbose", world.a.org.id),
    ]
    # A key of an admin of acme cannot reach globex: the key belongs to acme.
    admin_key = make_key(kernel, world.a.users["admin"], world.a.org, ["admin"])
    assert client.get(GLOBEX, headers=admin_key).status_code == 404


def test_deleting_an_organization_removes_its_values(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    r = client.put(API, json={"values": {"region": "us"}}, headers=su(kernel))
    assert r.status_code == 200
    for party in (world.a, world.b):
        r = client.put(
            f"/api/v1/orgs/{party.org.slug}/plugins/probe/settings",
            json={"values": {"region": "af", "token": SECRET}},
            headers=party.sessions["admin"],
        )
        assert r.status_code == 200, r.text
    assert len(rows(kernel)) == 5
    r = client.delete("/api/v1/orgs/acme?confirm=acme", headers=world.a.sessions["owner"])
    assert r.status_code in (200, 204), r.text
    left = rows(kernel)
    assert sorted((row.name, row.org_id or 0) for row in left) == sorted(
        [("region", 0), ("region", world.b.org.id), ("token", world.b.org.id)]
    )


def test_one_row_per_setting_and_level(kernel: Kernel, world: World) -> None:
    """The partial unique indexes hold on both databases, NULL organization included."""
    for org_id in (None, world.a.org.id):
        with kernel.db.transaction() as db:
            db.add(PluginSetting(plugin="probe", org_id=org_id, name="region", value='"a"'))
        with pytest.raises(IntegrityError), kernel.db.transaction() as db:
            db.add(PluginSetting(plugin="probe", org_id=org_id, name="region", value='"b"'))
    # The same name at the other level, or in another organization, is fine.
    with kernel.db.transaction() as db:
        db.add(PluginSetting(plugin="probe", org_id=world.b.org.id, name="region", value='"c"'))
    assert len(rows(kernel)) == 3


# Secrets ----------------------------------------------------------------------------------


def test_secrets_are_encrypted_at_rest_and_never_shown(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    r = client.put(API, json={"values": {"token": SECRET}}, headers=su(kernel))
    assert r.status_code == 200
    assert SECRET not in r.text
    r = client.put(
        ACME, json={"values": {"token": SECRET + "-acme"}}, headers=world.a.keys["admin"]
    )
    assert r.status_code == 200
    assert SECRET not in r.text

    stored = rows(kernel)
    assert len(stored) == 2
    for row in stored:
        assert row.value is None
        assert row.ciphertext and SECRET not in row.ciphertext
    with kernel.db.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT * FROM plugin_settings").all()
    assert SECRET not in repr(raw)
    assert {json.loads(kernel.box.decrypt(row.ciphertext or "")) for row in stored} == {
        SECRET,
        SECRET + "-acme",
    }

    for url, headers in ((API, su(kernel)), (ACME, world.a.sessions["admin"])):
        r = client.get(url, headers=headers)
        assert SECRET not in r.text
        token = by_name(r.json())["token"]
        assert (token["value"], token["default"], token["is_set"]) == (None, None, True)

    with kernel.db.session() as db:
        audit = db.scalars(
            select(AuditRecord)
            .where(AuditRecord.action.in_(["plugin_settings_update", "org_plugin_settings_update"]))
            .order_by(AuditRecord.id)
        ).all()
    assert [(a.action, a.outcome) for a in audit] == [
        ("plugin_settings_update", "success"),
        ("org_plugin_settings_update", "success"),
    ]
    for a in audit:
        assert (a.target_type, a.target_id) == ("plugin", "probe")
        assert a.detail == {"settings_set": ["token"], "settings_unset": []}
        assert SECRET not in repr((a.detail, a.target_id, a.actor_label))
    assert audit[1].org_id == world.a.org.id


def test_a_value_that_no_longer_fits_falls_back(kernel: Kernel, world: World) -> None:
    """After a plugin upgrade changed a type, or with another secret key, the stored
    value is ignored (and logged) rather than handed to the plugin."""
    with kernel.db.transaction() as db:
        db.add(PluginSetting(plugin="probe", org_id=None, name="port", value='"not an int"'))
        db.add(PluginSetting(plugin="probe", org_id=None, name="token", ciphertext="garbage"))
        db.add(PluginSetting(plugin="probe", org_id=world.a.org.id, name="region", value="{"))
        db.add(PluginSetting(plugin="probe", org_id=None, name="region", value='"us"'))
    values = service.effective_settings(kernel, "probe", org_id=world.a.org.id)
    assert (values["port"], values["token"], values["region"]) == (443, None, "us")


# What a plugin sees: route, job and subscriber, without a restart ----------------------------


def test_a_plugin_reads_its_settings_through_panel(
    client: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    key = world.a.keys["read"]
    r = client.get("/api/v1/orgs/acme/probe", headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["org"] == "acme" and r.json()["role"] == "owner"
    assert r.json()["core_api"] == "0.1"
    assert r.json()["settings"]["region"] == "eu"
    assert r.json()["settings"]["token"] is None
    assert client.get("/api/v1/orgs/globex/probe", headers=key).status_code == 404

    r = client.put(API, json={"values": {"port": 8443, "region": "us"}}, headers=su(kernel))
    assert r.status_code == 200
    r = client.put(
        ACME, json={"values": {"region": "af", "token": SECRET}}, headers=world.a.sessions["admin"]
    )
    assert r.status_code == 200
    # The same process, no restart: the next call sees the change.
    settings = client.get("/api/v1/orgs/acme/probe", headers=key).json()["settings"]
    assert (settings["port"], settings["region"], settings["token"]) == (8443, "af", SECRET)
    settings = client.get("/api/v1/orgs/globex/probe", headers=world.b.keys["read"]).json()[
        "settings"
    ]
    assert (settings["region"], settings["token"]) == ("us", None)

    job = kernel.jobs.enqueue("probe.run", org_id=world.a.org.id)
    deadline = time.monotonic() + 30
    while kernel.jobs.get(job.id).state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "the probe job did not finish"
        time.sleep(0.05)
    assert kernel.jobs.get(job.id).state == "succeeded", kernel.jobs.get(job.id).error
    assert kernel.jobs.get(job.id).result == "af"

    kernel.events.publish(probe.Pinged(org_id=world.a.org.id))
    kernel.events.publish(probe.Pinged(org_id=None))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, values in probe.seen:
        by_kind.setdefault(kind, []).append(values)
    assert [v["token"] for v in by_kind["job"]] == [SECRET]
    assert [(v["region"], v["token"], v["port"]) for v in by_kind["event"]] == [
        ("af", SECRET, 8443),
        ("us", None, 8443),
    ]
    assert kernel.plugins.statuses["probe"].status == "active"


def test_the_schema_builds_with_protocol_typed_dependencies(client: TestClient[Litestar]) -> None:
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    ops = {
        op["operationId"]
        for item in r.json()["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {"probe_show", "plugin_settings_show", "org_plugin_settings_update"} <= ops


# The command line ------------------------------------------------------------------------


def _cli(kernel: Kernel, *args: str, stdin: str | None = None) -> Any:
    s = kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
        "GAKWAYA_PLUGIN_MODULES": "tests.plugins.settings_probe",
    }
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def test_cli_show_set_unset(kernel: Kernel, world: World) -> None:
    r = _cli(kernel, "plugins", "settings", "show", "probe")
    assert r.exit_code == 0, r.output
    assert 'endpoint = "https://api.example.com"' in r.output
    assert "token = (secret, not set)" in r.output
    assert "missing (required, not set): token" in r.output

    r = _cli(
        kernel,
        "plugins",
        "settings",
        "set",
        "probe",
        "port=8443",
        "verbose=true",
        'tags=["a","b"]',
        "endpoint=12345",
        "region=a=b; $(id)",
        "token=-",
        stdin=SECRET + "\n",
    )
    assert r.exit_code == 0, r.output
    assert "set endpoint, port, region, tags, token, verbose" in r.output
    assert SECRET not in r.output
    values = service.effective_settings(kernel, "probe")
    # A str setting takes the text as typed, even when it looks like JSON.
    assert values["endpoint"] == "12345"
    assert (values["port"], values["verbose"], values["tags"]) == (8443, True, ["a", "b"])
    assert (values["region"], values["token"]) == ("a=b; $(id)", SECRET)
    assert next(row for row in rows(kernel) if row.name == "token").value is None

    r = _cli(kernel, "plugins", "settings", "show", "probe", "--json")
    assert r.exit_code == 0, r.output
    assert SECRET not in r.output
    shown = by_name(json.loads(r.output))
    assert shown["port"]["value"] == 8443 and shown["token"]["is_set"] is True

    r = _cli(kernel, "plugins", "settings", "set", "probe", "region=af", "--org", "acme")
    assert r.exit_code == 0, r.output
    assert service.effective_settings(kernel, "probe", org_id=world.a.org.id)["region"] == "af"
    r = _cli(kernel, "plugins", "settings", "show", "probe", "--org", "acme", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["org"] == "acme"
    assert by_name(body)["region"]["source"] == "organization"

    r = _cli(kernel, "plugins", "settings", "unset", "probe", "region", "--org", "acme")
    assert r.exit_code == 0, r.output
    assert service.effective_settings(kernel, "probe", org_id=world.a.org.id)["region"] == (
        "a=b; $(id)"
    )
    r = _cli(kernel, "plugins", "settings", "unset", "probe", "port", "token")
    assert r.exit_code == 0, r.output
    values = service.effective_settings(kernel, "probe")
    assert (values["port"], values["token"]) == (443, None)

    with kernel.db.session() as db:
        audit = db.scalars(
            select(AuditRecord).where(AuditRecord.actor_type == "cli").order_by(AuditRecord.id)
        ).all()
    assert [(a.action, a.target_id, a.org_id) for a in audit] == [
        ("plugin_settings_update", "probe", None),
        ("org_plugin_settings_update", "probe", world.a.org.id),
        ("org_plugin_settings_update", "probe", world.a.org.id),
        ("plugin_settings_update", "probe", None),
    ]
    assert audit[-1].detail == {"settings_set": [], "settings_unset": ["port", "token"]}
    assert all(SECRET not in repr(a.detail) for a in audit)


def test_cli_refusals(kernel: Kernel, world: World) -> None:
    before = len(rows(kernel))
    r = _cli(kernel, "plugins", "settings", "set", "probe", "port=x", "nope=1", "region=us")
    assert r.exit_code == 2, r.output
    assert "port: must be of type int" in r.output
    assert "nope: is not a setting of plugin 'probe'" in r.output
    r = _cli(kernel, "plugins", "settings", "set", "probe", "endpoint=x", "--org", "acme")
    assert r.exit_code == 2
    assert "endpoint: is installation-wide; a superuser sets it" in r.output
    r = _cli(kernel, "plugins", "settings", "set", "probe", "region")
    assert r.exit_code == 2 and "expected KEY=VALUE" in r.output
    r = _cli(kernel, "plugins", "settings", "set", "probe", "token=-", "region=-", stdin="x\n")
    assert r.exit_code == 2 and "only one KEY=-" in r.output
    r = _cli(kernel, "plugins", "settings", "set", "probe", "region=us", "--org", "nope")
    assert r.exit_code == 1 and "--org: organization 'nope' not found" in r.output
    r = _cli(kernel, "plugins", "settings", "show", "nothere")
    assert r.exit_code == 1 and "not found" in r.output
    r = _cli(kernel, "plugins", "settings", "unset", "nothere", "x")
    assert r.exit_code == 1 and "not found" in r.output
    assert len(rows(kernel)) == before


def test_plugins_without_settings_show_an_empty_list(
    client: TestClient[Litestar], kernel: Kernel
) -> None:
    r = client.get("/api/v1/plugins/core.jobs/settings", headers=su(kernel))
    assert r.status_code == 200, r.text
    assert r.json() == {"plugin": "core.jobs", "org": None, "settings": [], "missing": []}
    r = client.put(
        "/api/v1/plugins/core.jobs/settings", json={"values": {"x": 1}}, headers=su(kernel)
    )
    assert r.status_code == 422
    assert "is not a setting of plugin 'core.jobs'" in r.text


def test_an_organization_without_values_gets_the_installations(kernel: Kernel) -> None:
    """An organization with no values gets the installation's (no row needed)."""
    org = make_org(kernel, "initech")
    assert service.effective_settings(kernel, "probe", org_id=org.id)["region"] == "eu"


# docs/plugins/settings.md: its examples, run as the plugin module they add up to ----------

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins" / "settings.md"


def test_the_author_guide_examples_work(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOC.read_text()
    toml = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(toml) == 1 and len(blocks) == 3
    module = types.ModuleType("settings_md_example")
    # Litestar resolves a handler's annotations through its module in sys.modules.
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile("\n".join(blocks), str(DOC), "exec"), module.__dict__)  # noqa: S102
    module.MANIFEST = load_manifest(toml[0])  # type: ignore[attr-defined]

    kernel = Kernel.create(settings, extra_plugins=[("gakwaya-status-ping", module)])
    try:
        assert kernel.plugins.statuses["gakwaya-status-ping"].status == "active"
        owner = make_user(kernel, "owner@example.com")
        org = make_org(kernel, "acme", {owner: "owner"})
        key = make_key(kernel, owner, org, ["read"])
        with TestClient(create_app(kernel)) as client:
            r = client.get("/api/v1/orgs/acme/status-ping", headers=key)
            assert r.status_code == 200, r.text
            assert r.json() == {
                "endpoint": "https://status.example.com",
                "channel": "#ops",
                "configured": False,
            }
            r = client.get("/api/v1/orgs/acme/plugins/gakwaya-status-ping/settings", headers=key)
            assert r.json()["missing"] == ["api_token"]

            headers = make_session(kernel, owner)
            r = client.put(
                "/api/v1/orgs/acme/plugins/gakwaya-status-ping/settings",
                json={"values": {"api_token": SECRET, "channel": "#acme"}},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            r = client.put(
                "/api/v1/plugins/gakwaya-status-ping/settings",
                json={"values": {"interval": 30}},
                headers=su(kernel),
            )
            assert r.status_code == 200, r.text
            r = client.get("/api/v1/orgs/acme/status-ping", headers=key)
            assert r.json() == {
                "endpoint": "https://status.example.com",
                "channel": "#acme",
                "configured": True,
            }

            # on_event enqueues the job now that the token is set; the job reads it.
            kernel.events.publish(
                MemberAdded(org_id=org.id, user_id=owner.id, role="viewer", via="cli")
            )
            job = _wait_for_job(kernel, "status_ping.ping")
            assert (job.state, job.result) == ("succeeded", "#acme"), job.error
            assert any("every 30 s" in line for line in _job_lines(kernel, job.id))
    finally:
        kernel.close()


def _wait_for_job(kernel: Kernel, job_type: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        with kernel.db.session() as db:
            job = db.scalars(select(Job).where(Job.type == job_type)).first()
        if job is not None and job.state in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"no finished {job_type} job"
        time.sleep(0.05)


def _job_lines(kernel: Kernel, job_id: str) -> list[str]:
    with kernel.db.session() as db:
        return list(db.scalars(select(JobLog.line).where(JobLog.job_id == job_id)))
