"""API keys: created within the creator's limits, shown once, stored hashed, listed,
revoked; and how the server treats a key on every request."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from gakwaya.apikeys import keys as key_format
from gakwaya.apikeys.services import check_scopes
from gakwaya.db.base import utcnow
from gakwaya.db.models import ApiKey, AuditRecord
from gakwaya.errors import PermissionDenied
from gakwaya_sdk.permissions import Role, Scope
from tests.conftest import make_key
from tests.orgs.helpers import API, BAD_NAMES, all_event_payloads, assert_invalid, events_of

KEYS = f"{API}/orgs/acme/api-keys"


def create(client, headers, scopes, name="ci", **extra):
    return client.post(KEYS, json={"name": name, "scopes": scopes, **extra}, headers=headers)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        ("viewer", ["read"]),
        ("developer", ["read", "deploy"]),
        ("developer", ["write"]),
        ("admin", ["admin"]),
        ("owner", ["read", "deploy", "write", "admin"]),
    ],
)
def test_create_within_role(client, kernel, world, role, scopes):
    r = create(client, world.a.sessions[role], scopes)
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["key"]
    assert key_format.well_formed(secret) and secret.startswith("gkw_")
    assert body["prefix"] == secret[:12] and body["status"] == "active"
    assert body["scopes"] == scopes and body["expires_at"] is None
    assert body["owner_email"] == f"{role}@acme.example.com"
    with kernel.db.session() as db:
        row = db.get(ApiKey, body["id"])
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "api_keys_create")).one()
    assert row.org_id == world.a.org.id and row.user_id == world.a.users[role].id
    assert row.key_hash == key_format.key_digest(secret)
    assert secret not in (row.key_hash, row.prefix, row.name)
    assert (audit.target_type, audit.target_id) == ("api_key", str(body["id"]))
    assert secret not in str(audit.detail)
    created = events_of(kernel, "api_key.created")[-1]
    assert created == {**created, "key_id": body["id"], "scopes": scopes}
    assert secret not in all_event_payloads(kernel)
    # The key works, as its creator, in this org.
    r = client.get(f"{API}/orgs/acme", headers=bearer(secret))
    assert r.status_code == 200 and r.json()["role"] == role


def test_key_is_shown_once(client, kernel, world):
    h = world.a.sessions["developer"]
    secret = create(client, h, ["read"]).json()["key"]
    for headers in (h, world.a.sessions["owner"]):
        r = client.get(KEYS, headers=headers)
        assert r.status_code == 200
        assert secret not in r.text and secret[12:] not in r.text
        assert all("key" not in item for item in r.json()["items"])


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        ("viewer", ["deploy"]),
        ("viewer", ["write"]),
        ("viewer", ["read", "admin"]),
        ("developer", ["admin"]),
    ],
)
def test_scopes_beyond_role_are_refused(client, kernel, world, role, scopes):
    r = create(client, world.a.sessions[role], scopes)
    assert r.status_code == 403, r.text
    assert r.json()["detail"].startswith("scopes:")
    with kernel.db.session() as db:
        mine = db.scalars(select(ApiKey).where(ApiKey.user_id == world.a.users[role].id)).all()
    assert mine == []


def test_a_key_cannot_create_a_broader_key():
    # Only admin-scoped keys reach api_keys_create (api_keys.manage needs 'admin'), so the
    # rule is exercised on the service that enforces it.
    with pytest.raises(PermissionDenied, match="cannot have more than that key's scopes"):
        check_scopes(
            [Scope.WRITE], role=Role.OWNER, key_scopes=frozenset({Scope.READ, Scope.DEPLOY})
        )
    assert check_scopes(
        [Scope.DEPLOY, Scope.READ, Scope.DEPLOY],
        role=Role.DEVELOPER,
        key_scopes=frozenset({Scope.READ, Scope.DEPLOY}),
    ) == ["read", "deploy"]


def test_admin_key_creates_keys(client, world):
    r = create(client, world.a.keys["admin"], ["deploy"])
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == world.a.users["owner"].id


@pytest.mark.parametrize("scope", ["read", "deploy", "write"])
def test_keys_without_admin_scope_cannot_create_or_revoke(client, kernel, world, scope):
    r = create(client, world.a.keys[scope], ["read"])
    assert r.status_code == 403, r.text
    with kernel.db.session() as db:
        key_id = db.scalar(select(ApiKey.id).where(ApiKey.org_id == world.a.org.id))
    r = client.delete(f"{KEYS}/{key_id}", headers=world.a.keys[scope])
    assert r.status_code == 403, r.text


def test_expiry(client, kernel, world):
    h = world.a.sessions["owner"]
    before = utcnow()
    r = create(client, h, ["read"], expires_in_days=30)
    assert r.status_code == 201, r.text
    expires = dt.datetime.fromisoformat(r.json()["expires_at"])
    assert before + dt.timedelta(days=30) <= expires <= utcnow() + dt.timedelta(days=30)
    at = (utcnow() + dt.timedelta(days=2)).replace(microsecond=0)
    r = create(client, h, ["read"], expires_at=at.isoformat())
    assert r.status_code == 201, r.text
    assert dt.datetime.fromisoformat(r.json()["expires_at"]) == at


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 3651}, "expires_in_days"),
        ({"expires_in_days": -1}, "expires_in_days"),
        ({"expires_in_days": 1.5}, "expires_in_days"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "9999-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_in_days": 5, "expires_at": "2030-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_expiry(client, world, extra, field):
    assert_invalid(create(client, world.a.sessions["owner"], ["read"], **extra), field)


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    "scopes", [[], ["root"], ["READ"], [""], "read", None, ["read", "read", "read", "read", "read"]]
)
def test_bad_scopes(client, world, scopes):
    assert_invalid(create(client, world.a.sessions["owner"], scopes), "scopes")


@pytest.mark.edge_rule
@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_name(client, world, name):
    assert_invalid(create(client, world.a.sessions["owner"], ["read"], name=name), "name")


def test_missing_fields(client, world):
    h = world.a.sessions["owner"]
    assert_invalid(client.post(KEYS, json={"scopes": ["read"]}, headers=h), "name")
    assert_invalid(client.post(KEYS, json={"name": "x"}, headers=h), "scopes")


def test_list_own_keys_admins_see_all(client, kernel, world):
    dev_key = create(client, world.a.sessions["developer"], ["read"]).json()
    viewer_key = create(client, world.a.sessions["viewer"], ["read"]).json()
    r = client.get(KEYS, headers=world.a.sessions["developer"])
    assert [k["id"] for k in r.json()["items"]] == [dev_key["id"]]
    r = client.get(KEYS, headers=world.a.sessions["viewer"])
    assert [k["id"] for k in r.json()["items"]] == [viewer_key["id"]]
    for role in ("admin", "owner"):
        r = client.get(KEYS, headers=world.a.sessions[role])
        items = r.json()["items"]
        assert {dev_key["id"], viewer_key["id"]} <= {k["id"] for k in items}
        assert len(items) == 6  # the four fixture keys of the owner, and these two
        assert {k["owner_email"] for k in items} == {
            "owner@acme.example.com",
            "developer@acme.example.com",
            "viewer@acme.example.com",
        }
    # A read key lists too (as the owner it belongs to).
    assert len(client.get(KEYS, headers=world.a.keys["read"]).json()["items"]) == 6
    # Pages.
    page = client.get(f"{KEYS}?limit=4", headers=world.a.sessions["owner"]).json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    assert_invalid(client.get(f"{KEYS}?limit=500", headers=world.a.sessions["owner"]), "limit")


def test_last_used_at_is_recorded(client, kernel, world):
    body = create(client, world.a.sessions["developer"], ["read"]).json()
    assert body["last_used_at"] is None
    assert client.get(f"{API}/orgs/acme/members", headers=bearer(body["key"])).status_code == 200
    with kernel.db.session() as db:
        used = db.get(ApiKey, body["id"]).last_used_at
    assert used is not None
    items = client.get(KEYS, headers=world.a.sessions["developer"]).json()["items"]
    assert dt.datetime.fromisoformat(items[0]["last_used_at"]) == used


def test_revoke_own_key_stops_it_at_once(client, kernel, world):
    h = world.a.sessions["developer"]
    body = create(client, h, ["write"]).json()
    key = bearer(body["key"])
    assert client.get(f"{API}/orgs/acme", headers=key).status_code == 200
    r = client.delete(f"{KEYS}/{body['id']}", headers=h)
    assert r.status_code == 204, r.text
    r = client.get(f"{API}/orgs/acme", headers=key)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    listed = client.get(KEYS, headers=h).json()["items"][0]
    assert listed["status"] == "revoked" and listed["revoked_at"]
    ev = events_of(kernel, "api_key.revoked")[-1]
    assert ev == {
        **ev,
        "key_id": body["id"],
        "reason": "revoked",
        "revoked_by": world.a.users["developer"].id,
    }
    with kernel.db.session() as db:
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "api_keys_revoke")).one()
    assert (audit.target_type, audit.target_id) == ("api_key", str(body["id"]))
    # Revoking again is harmless.
    assert client.delete(f"{KEYS}/{body['id']}", headers=h).status_code == 204


def test_a_key_revokes_itself(client, world):
    h = world.a.keys["admin"]
    r = client.get(KEYS, headers=world.a.sessions["owner"]).json()["items"]
    own = next(k for k in r if k["scopes"] == ["admin"])
    assert client.delete(f"{KEYS}/{own['id']}", headers=h).status_code == 204
    assert client.get(f"{API}/orgs/acme", headers=h).status_code == 401


def test_only_admins_revoke_others_keys(client, world):
    dev = create(client, world.a.sessions["developer"], ["read"]).json()
    r = client.delete(f"{KEYS}/{dev['id']}", headers=world.a.sessions["viewer"])
    assert r.status_code == 404, r.text
    assert client.get(f"{API}/orgs/acme", headers=bearer(dev["key"])).status_code == 200
    r = client.delete(f"{KEYS}/{dev['id']}", headers=world.a.sessions["admin"])
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/orgs/acme", headers=bearer(dev["key"])).status_code == 401


def test_other_orgs_key_is_404(client, kernel, world):
    with kernel.db.session() as db:
        theirs = db.scalar(select(ApiKey.id).where(ApiKey.org_id == world.b.org.id))
    r = client.delete(f"{KEYS}/{theirs}", headers=world.a.sessions["owner"])
    assert r.status_code == 404, r.text
    assert "globex" not in r.text.lower()
    assert client.get(f"{API}/orgs/globex", headers=world.b.keys["read"]).status_code == 200
    assert client.delete(f"{KEYS}/999999", headers=world.a.sessions["owner"]).status_code == 404
    # And a globex member cannot reach acme's keys at all.
    assert client.get(KEYS, headers=world.b.sessions["owner"]).status_code == 404
    r = create(client, world.b.keys["admin"], ["read"])
    assert r.status_code == 404


def test_key_of_org_a_on_org_b_is_404(client, world):
    for scope in ("read", "admin"):
        r = client.get(f"{API}/orgs/globex/api-keys", headers=world.a.keys[scope])
        assert r.status_code == 404, r.text


def test_expired_key_is_401(client, kernel, world):
    key = make_key(
        kernel,
        world.a.users["owner"],
        world.a.org,
        ["admin"],
        expires_at=utcnow() - dt.timedelta(minutes=1),
    )
    r = client.get(KEYS, headers=key)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer gkw_short",
        "Bearer " + "x" * 42,
        "Basic abc",
        "Bearer ",
        # A well-formed key that was never issued.
        "Bearer " + key_format.generate(),
    ],
    # Stable ids: parallel workers (pytest-xdist) must collect the same test names.
    ids=["short", "not-a-key", "basic", "empty", "never-issued"],
)
def test_bad_credentials_are_401(client, world, authorization):
    r = client.get(KEYS, headers={"Authorization": authorization})
    assert r.status_code == 401, r.text


def test_a_mistyped_key_fails_its_checksum(client, world):
    good = world.a.keys["read"]["Authorization"].removeprefix("Bearer ")
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    assert not key_format.well_formed(flipped)
    r = client.get(KEYS, headers=bearer(flipped))
    assert r.status_code == 401 and "checksum" in r.json()["detail"]


def test_unauthenticated(client, world):
    assert client.get(KEYS).status_code == 401
    assert create(client, {}, ["read"]).status_code == 401
    assert client.delete(f"{KEYS}/1").status_code == 401
