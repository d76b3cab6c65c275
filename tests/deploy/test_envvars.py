"""Environment variables: encrypted at rest, secret values never returned nor stored
in clear anywhere, all-or-nothing changes, bad keys and values refused by name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gakwaya.db.models import App, AppEnvVar, AuditRecord, Deployment
from gakwaya.deploy.envvars import app_env
from tests.deploy.app_helpers import API, OTHER, counts, create_app, create_project, stored_text
from tests.orgs.helpers import events_of

SECRET = "pg://admin:Sup3rS3cretPassw0rd@db/prod"


@pytest.fixture
def web(client, world):
    h = world.a.sessions["developer"]
    create_project(client, h)
    return create_app(client, h)


def env_url(web):
    return f"{API}/apps/{web['id']}/env"


def put(client, web, headers, vars, **extra):
    return client.patch(env_url(web), json={"vars": vars, **extra}, headers=headers)


def test_set_list_and_encryption_at_rest(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    r = put(
        client,
        web,
        dev,
        {
            "DEBUG": {"value": "1"},
            "DATABASE_URL": {"value": SECRET, "secret": True},
            "CERT": {"value": "line 1\nline 2"},
        },
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["key"], i["secret"], i["value"]) for i in items] == [
        ("CERT", False, "line 1\nline 2"),
        ("DATABASE_URL", True, None),
        ("DEBUG", False, "1"),
    ]
    assert r.json()["deployment_id"] is None
    listed = client.get(env_url(web), headers=world.a.sessions["viewer"])
    assert listed.status_code == 200 and listed.json()["items"] == items
    with kernel.db.session() as db:
        rows = db.scalars(select(AppEnvVar).where(AppEnvVar.app_id == web["id"])).all()
        assert all(row.org_id == world.a.org.id for row in rows)
        assert all(row.ciphertext not in ("1", SECRET, "line 1\nline 2") for row in rows)
        env = app_env(kernel.box, db, db.get(App, web["id"]))
    assert env == {
        "CERT": ("line 1\nline 2", False),
        "DATABASE_URL": (SECRET, True),
        "DEBUG": ("1", False),
    }
    changed = events_of(kernel, "app.env_changed")[-1]
    assert changed["keys"] == ["CERT", "DATABASE_URL", "DEBUG"]
    with kernel.db.session() as db:
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "env_set")).one()
    assert (audit.target_type, audit.target_id) == ("app", str(web["id"]))
    assert audit.detail["keys"] == ["CERT", "DATABASE_URL", "DEBUG"]


def test_secret_values_are_never_returned_or_stored_in_clear(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    responses = [put(client, web, dev, {"DATABASE_URL": {"value": SECRET, "secret": True}})]
    # Set again without the flag: it stays secret.
    responses.append(put(client, web, dev, {"DATABASE_URL": {"value": SECRET + "2"}}))
    responses += [
        client.get(env_url(web), headers=dev),
        client.get(f"{API}/apps/{web['id']}", headers=dev),
        client.get(f"{API}/apps", headers=dev),
        client.get(f"{API}/events", headers=world.a.sessions["owner"]),
        client.get(f"{API}/audit", headers=world.a.sessions["owner"]),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        assert "Sup3rS3cret" not in r.text
    assert client.get(env_url(web), headers=dev).json()["items"][0]["secret"] is True
    assert "Sup3rS3cret" not in stored_text(kernel)
    # Turning the flag off shows the value set with it, and only that one.
    r = put(client, web, dev, {"DATABASE_URL": {"value": "visible", "secret": False}})
    assert r.json()["items"] == [{**r.json()["items"][0], "secret": False, "value": "visible"}]


def test_null_unsets_and_delete_route(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    put(client, web, dev, {"A": {"value": "1"}, "B": {"value": "2"}, "C": {"value": "3"}})
    r = put(client, web, dev, {"A": None, "NEVER_SET": None})
    assert [i["key"] for i in r.json()["items"]] == ["B", "C"]
    assert events_of(kernel, "app.env_changed")[-1]["keys"] == ["A"]
    r = client.delete(f"{env_url(web)}/B", headers=dev)
    assert r.status_code == 204, r.text
    assert [i["key"] for i in client.get(env_url(web), headers=dev).json()["items"]] == ["C"]
    r = client.delete(f"{env_url(web)}/B", headers=dev)
    assert r.status_code == 404 and "B" in r.json()["detail"]
    with kernel.db.session() as db:
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "env_unset")).all()
    assert [a.outcome for a in audit] == ["success", "failure"]


def test_roles(client, world, web):
    viewer, dev = world.a.sessions["viewer"], world.a.sessions["developer"]
    assert client.get(env_url(web), headers=viewer).status_code == 200
    r = put(client, web, viewer, {"A": {"value": "1"}})
    assert r.status_code == 403 and "env.write" in r.json()["detail"]
    assert put(client, web, dev, {"A": {"value": "1"}}).status_code == 200
    assert client.delete(f"{env_url(web)}/A", headers=viewer).status_code == 403
    assert client.delete(f"{env_url(web)}/A", headers=dev).status_code == 204
    assert put(client, web, world.a.keys["read"], {"A": {"value": "1"}}).status_code == 403
    assert put(client, web, world.a.keys["write"], {"A": {"value": "1"}}).status_code == 200


def test_another_org_cannot_see_or_change_them(client, kernel, world, web):
    put(client, web, world.a.sessions["developer"], {"A": {"value": "1"}})
    before = counts(kernel)
    outsider = world.b.sessions["owner"]
    for url in (f"{OTHER}/apps/{web['id']}/env", env_url(web)):
        assert client.get(url, headers=outsider).status_code == 404
        r = client.patch(url, json={"vars": {"A": {"value": "2"}}}, headers=outsider)
        assert r.status_code == 404
        assert client.delete(f"{url}/A", headers=outsider).status_code == 404
    assert counts(kernel) == before
    assert (
        client.get(env_url(web), headers=world.a.sessions["viewer"]).json()["items"][0]["value"]
        == "1"
    )


BAD_KEYS = ["lower", "1X", "A-B", "A B", "PORT", "GAKWAYA_X", "GAKWAYA_", "A\n", "A;B", "$(X)", ""]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_bad_key_writes_nothing(client, kernel, world, web, bad):
    dev = world.a.sessions["developer"]
    put(client, web, dev, {"KEEP": {"value": "old"}})
    before = counts(kernel)
    r = put(
        client, web, dev, {"KEEP": {"value": "new"}, "GOOD": {"value": "1"}, bad: {"value": "x"}}
    )
    assert r.status_code == 422, r.text
    problem = r.json()["errors"][0]
    assert problem["field"] == f"vars.{bad}"
    assert "[A-Z_][A-Z0-9_]*" in problem["rule"] and "PORT" in problem["rule"]
    assert counts(kernel) == before
    items = client.get(env_url(web), headers=dev).json()["items"]
    assert [(i["key"], i["value"]) for i in items] == [("KEEP", "old")]


@pytest.mark.parametrize("bad", ["nul\x00byte", "\x00", "x" * 32769])
def test_bad_value_writes_nothing_and_is_not_echoed(client, kernel, world, web, bad):
    dev = world.a.sessions["developer"]
    before = counts(kernel)
    r = put(client, web, dev, {"GOOD": {"value": "1"}, "BAD": {"value": bad, "secret": True}})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "vars.BAD"
    assert "NUL" in r.json()["errors"][0]["rule"]
    assert bad not in r.text
    assert counts(kernel) == before


def test_too_many_variables(client, kernel, world, web):
    many = {f"V{i}": {"value": "x"} for i in range(501)}
    r = put(client, web, world.a.sessions["developer"], many)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "vars"
    assert counts(kernel)["app_env_vars"] == 0


def test_bad_shapes_are_refused(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    for body in (
        {"vars": {"A": "plain string"}},
        {"vars": {"A": {"value": 1}}},
        {"vars": {"A": {"value": "1", "extra": True}}},
        {"vars": []},
        {},
    ):
        r = client.patch(env_url(web), json=body, headers=dev)
        assert r.status_code in (400, 422), (body, r.text)
    assert counts(kernel)["app_env_vars"] == 0


def test_redeploy_queues_a_deployment(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    r = put(client, web, dev, {"A": {"value": "1"}}, redeploy=True)
    assert r.status_code == 200, r.text
    first = r.json()["deployment_id"]
    assert first is not None
    r = client.delete(f"{env_url(web)}/A", params={"redeploy": "true"}, headers=dev)
    assert r.status_code == 204, r.text
    with kernel.db.session() as db:
        deployments = db.scalars(
            select(Deployment).where(Deployment.app_id == web["id"]).order_by(Deployment.id)
        ).all()
    assert deployments[0].id == first
    assert [(d.trigger, d.created_by) for d in deployments] == [
        ("env", "developer@acme.example.com"),
        ("env", "developer@acme.example.com"),
    ]
    # Without the flag nothing is queued.
    put(client, web, dev, {"B": {"value": "2"}})
    with kernel.db.session() as db:
        n = len(db.scalars(select(Deployment).where(Deployment.app_id == web["id"])).all())
    assert n == 2
