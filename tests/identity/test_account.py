"""The signed-in user's account: profile, password, email, sessions, input rules."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gakwaya.db.models import ApiKey, UserSession
from gakwaya.security.passwords import verify_password
from tests.conftest import PASSWORD, make_key, make_org, make_session, make_user
from tests.identity.helpers import login, session_row, session_token, signed_in, user_by_email

EMAIL = "ada@example.com"
NEW_PASSWORD = "a completely different passphrase 42"


def test_show_and_update(client, kernel):
    user = make_user(kernel, EMAIL, superuser=True)
    csrf = signed_in(client, EMAIL)
    r = client.get("/api/v1/account")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == user.id and body["email"] == EMAIL and body["is_superuser"] is True
    assert body["two_factor_enabled"] is False
    assert "password_hash" not in body and "totp_secret" not in body
    r = client.patch("/api/v1/account", json={"name": "Ada Lovelace"}, headers=csrf)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Ada Lovelace"
    assert user_by_email(kernel, EMAIL).name == "Ada Lovelace"


def test_account_needs_sign_in(client, kernel):
    assert client.get("/api/v1/account").status_code == 401
    assert client.patch("/api/v1/account", json={"name": "x"}).status_code == 401


def _other_sessions(kernel, user, n=2):
    return [make_session(kernel, user) for _ in range(n)]


def test_password_change_needs_the_current_password_and_ends_other_sessions(
    client, kernel, fresh_client
):
    user = make_user(kernel, EMAIL)
    org = make_org(kernel, "acme", {user: "owner"})
    key = make_key(kernel, user, org, ["read"])
    others = _other_sessions(kernel, user)
    csrf = signed_in(client, EMAIL)
    current = session_token(client)

    r = client.post(
        "/api/v1/account/password",
        json={"current_password": "not my password at all", "new_password": NEW_PASSWORD},
        headers=csrf,
    )
    assert r.status_code == 403
    assert r.json()["errors"][0]["field"] == "current_password"
    for headers in others:  # nothing ended by a failed attempt
        assert (
            client.get("/api/v1/account", headers={"Cookie": headers["Cookie"]}).status_code == 200
        )

    r = client.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=csrf,
    )
    assert r.status_code == 200, r.text
    assert verify_password(user_by_email(kernel, EMAIL).password_hash, NEW_PASSWORD)
    # This session stays, every other one ends; API keys are not touched.
    assert session_row(kernel, current) is not None
    assert client.get("/api/v1/account").status_code == 200
    with kernel.db.session() as db:
        rows = db.scalars(select(UserSession).where(UserSession.user_id == user.id)).all()
        assert len(rows) == 1
        assert db.scalars(select(ApiKey).where(ApiKey.user_id == user.id)).one().revoked_at is None
    for headers in others:
        fresh = fresh_client()
        assert (
            fresh.get("/api/v1/account", headers={"Cookie": headers["Cookie"]}).status_code == 401
        )
    assert client.get("/api/v1/account", headers=key).status_code == 200
    # Old password no longer signs in, the new one does.
    assert login(fresh_client(), EMAIL, PASSWORD).status_code == 401
    assert login(fresh_client(), EMAIL, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("new_password", "rule"),
    [
        ("short1", "at least 12 characters"),
        ("password1234", "commonly used"),
        ("aaaaaaaaaaaaaaaa", "commonly used"),
        ("ada@example.com", "must not be your email"),
        (PASSWORD, "must differ"),
    ],
)
def test_password_policy_names_the_field(client, kernel, new_password, rule):
    make_user(kernel, EMAIL)
    csrf = signed_in(client, EMAIL)
    r = client.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=csrf,
    )
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == "new_password"
    assert rule in error["rule"]
    assert verify_password(user_by_email(kernel, EMAIL).password_hash, PASSWORD)


def test_email_change(client, kernel, fresh_client):
    user = make_user(kernel, EMAIL)
    make_user(kernel, "grace@example.com")
    others = _other_sessions(kernel, user)
    csrf = signed_in(client, EMAIL)

    r = client.post(
        "/api/v1/account/email",
        json={"password": "not my password at all", "email": "ada@new.example.com"},
        headers=csrf,
    )
    assert r.status_code == 403
    assert r.json()["errors"][0]["field"] == "password"
    r = client.post(
        "/api/v1/account/email",
        json={"password": PASSWORD, "email": "Grace@example.com"},
        headers=csrf,
    )
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]
    assert user_by_email(kernel, EMAIL).id == user.id

    r = client.post(
        "/api/v1/account/email",
        json={"password": PASSWORD, "email": "Ada@New.Example.com"},
        headers=csrf,
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ada@new.example.com"
    for headers in others:
        assert (
            fresh_client().get("/api/v1/account", headers={"Cookie": headers["Cookie"]}).status_code
            == 401
        )
    assert client.get("/api/v1/account").json()["email"] == "ada@new.example.com"
    assert login(fresh_client(), EMAIL).status_code == 401
    assert login(fresh_client(), "ada@new.example.com").status_code == 200


def test_sessions_list_and_revoke(client, kernel, fresh_client):
    make_user(kernel, EMAIL)
    stranger = make_user(kernel, "mallory@example.com")
    other = fresh_client()
    login(other, EMAIL, headers={"User-Agent": "OtherBrowser/1.0"})
    csrf = signed_in(client, EMAIL)
    stranger_headers = make_session(kernel, stranger)

    r = client.get("/api/v1/account/sessions")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 2
    assert [i["current"] for i in items] == [True, False]  # newest first
    assert items[1]["user_agent"] == "OtherBrowser/1.0"
    assert items[0]["ip"] == "testclient"
    assert set(items[0]) == {
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "ip",
        "user_agent",
        "current",
    }
    # Pagination.
    r = client.get("/api/v1/account/sessions", params={"limit": 1})
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r = client.get(
        "/api/v1/account/sessions", params={"limit": 1, "cursor": r.json()["next_cursor"]}
    )
    assert [i["id"] for i in r.json()["items"]] == [items[1]["id"]]
    assert client.get("/api/v1/account/sessions", params={"cursor": "x"}).status_code == 422

    # Someone else's session is a 404 and stays alive.
    with kernel.db.session() as db:
        stranger_id = db.scalars(
            select(UserSession.id).where(UserSession.user_id == stranger.id)
        ).one()
    r = client.delete(f"/api/v1/account/sessions/{stranger_id}", headers=csrf)
    assert r.status_code == 404
    assert (
        fresh_client()
        .get("/api/v1/account", headers={"Cookie": stranger_headers["Cookie"]})
        .status_code
        == 200
    )
    assert client.delete("/api/v1/account/sessions/999999", headers=csrf).status_code == 404

    r = client.delete(f"/api/v1/account/sessions/{items[1]['id']}", headers=csrf)
    assert r.status_code == 204, r.text
    assert other.get("/api/v1/account").status_code == 401
    assert len(client.get("/api/v1/account/sessions").json()["items"]) == 1
    # Revoking the current one signs this browser out.
    r = client.delete(f"/api/v1/account/sessions/{items[0]['id']}", headers=csrf)
    assert r.status_code == 204
    assert client.get("/api/v1/account").status_code == 401


BAD_EMAILS = [
    "ada@example.com\n",
    "ada\n@example.com",
    "ada;rm@example.com",
    "$(reboot)@example.com",
    "`id`@example.com",
    "-ada@example.com",
    "ada @example.com",
    "ada@-example.com",
    "ada@example",
    "a" * 65 + "@example.com",
    "ada@" + "a" * 250 + ".com",
    "",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_bad_email_is_refused_naming_the_field(client, kernel, fresh_client, email):
    make_user(kernel, EMAIL)
    csrf = signed_in(client, EMAIL)
    r = client.post(
        "/api/v1/account/email", json={"password": PASSWORD, "email": email}, headers=csrf
    )
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == "email"
    assert "email address" in error["rule"] or "length" in error["rule"]
    r = fresh_client().post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "email"


@pytest.mark.parametrize("name", ["Ada\n", "Ada\tL", "", "x" * 101, "Ada\x00"])
def test_bad_name_is_refused_naming_the_field(client, kernel, name):
    make_user(kernel, EMAIL)
    csrf = signed_in(client, EMAIL)
    r = client.patch("/api/v1/account", json={"name": name}, headers=csrf)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "name"
    assert user_by_email(kernel, EMAIL).name == "ada"


def test_unknown_fields_and_wrong_types_are_refused(client, kernel, fresh_client):
    make_user(kernel, EMAIL)
    csrf = signed_in(client, EMAIL)
    r = client.patch("/api/v1/account", json={"name": "Ada", "is_superuser": True}, headers=csrf)
    assert r.status_code in (400, 422)
    assert client.get("/api/v1/account").json()["is_superuser"] is False
    anonymous = fresh_client()
    r = anonymous.post("/api/v1/auth/login", json={"email": EMAIL, "password": 12345})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "password"
    r = anonymous.post("/api/v1/auth/login", json={"email": EMAIL, "password": "x" * 1025})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "password"
