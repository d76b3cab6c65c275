"""Signing in and out: messages, cookies, session fixation, CSRF, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from litestar import post
from litestar.params import FromPath
from sqlalchemy import select

from gakwaya.db.base import utcnow
from gakwaya.db.models import AuditRecord, UserSession
from gakwaya.kernel import Kernel
from gakwaya.security.tokens import digest, new_token
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl
from tests.conftest import PASSWORD, make_key, make_org, make_session, make_user
from tests.identity.helpers import LOGIN, login, session_row, session_token, signed_in


def test_login_sets_session_and_csrf_cookies(client, kernel):
    user = make_user(kernel, "ada@example.com")
    r = login(client, "ada@example.com")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["user"] == {
        "id": user.id,
        "email": "ada@example.com",
        "name": "ada",
        "two_factor_enabled": False,
    }
    cookies = {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}
    session = cookies["gakwaya_session"].lower()
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "path=/" in session
    assert "httponly" not in cookies["gakwaya_csrf"].lower()  # the page's script reads it
    assert "samesite=strict" in cookies["gakwaya_csrf"].lower()
    assert client.cookies.get("gakwaya_csrf") == body["csrf_token"]
    # The session works and knows who it is.
    r = client.get("/api/v1/account")
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ada@example.com"
    # Only the digest of the token is stored.
    row = session_row(kernel, session_token(client))
    assert row is not None and row.state == "active" and row.token_hash != session_token(client)


def test_login_email_is_case_insensitive(client, kernel):
    make_user(kernel, "grace@example.com")
    assert login(client, "Grace@Example.COM").status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(client, kernel):
    make_user(kernel, "ada@example.com")
    wrong = login(client, "ada@example.com", "not the password at all")
    unknown = login(client, "nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["detail"] == "the email address or password is not correct"
    assert "gakwaya_session" not in wrong.headers.get("set-cookie", "")
    assert session_token(client) is None


def test_failed_and_successful_logins_are_audited(client, kernel):
    user = make_user(kernel, "ada@example.com")
    login(client, "ada@example.com", "not the password at all")
    login(client, "ada@example.com")
    with kernel.db.session() as db:
        rows = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "auth_login").order_by(AuditRecord.id)
        ).all()
    assert [(r.outcome, r.actor_type, r.actor_id, r.actor_label) for r in rows] == [
        ("denied", "anonymous", "", "ada@example.com"),
        ("success", "user", str(user.id), "ada@example.com"),
    ]
    assert rows[0].ip == "testclient"


def test_logout_ends_the_session_and_clears_cookies(client, kernel):
    make_user(kernel, "ada@example.com")
    csrf = signed_in(client, "ada@example.com")
    token = session_token(client)
    r = client.post("/api/v1/auth/logout", headers=csrf)
    assert r.status_code == 204, r.text
    assert session_row(kernel, token) is None
    set_cookies = " ".join(r.headers.get_list("set-cookie")).lower()
    assert "gakwaya_session=" in set_cookies and "max-age=0" in set_cookies
    assert client.get("/api/v1/account").status_code == 401
    # The old token is dead even when replayed by hand.
    r = client.get("/api/v1/account", headers={"Cookie": f"gakwaya_session={token}"})
    assert r.status_code == 401


def test_logout_needs_a_session(client, kernel):
    assert client.post("/api/v1/auth/logout").status_code == 401


# Session fixation -----------------------------------------------------------------------


def _new_session_token(response) -> str:
    return {
        c.split("=", 1)[0]: c.split("=", 1)[1].split(";")[0]
        for c in response.headers.get_list("set-cookie")
    }["gakwaya_session"]


def test_a_planted_unknown_cookie_is_not_adopted(client, kernel):
    make_user(kernel, "ada@example.com")
    planted = new_token()
    r = client.post(
        LOGIN,
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"Cookie": f"gakwaya_session={planted}"},
    )
    assert r.status_code == 200, r.text
    assert _new_session_token(r) != planted
    assert session_row(kernel, planted) is None
    assert session_row(kernel, _new_session_token(r)) is not None


def test_a_planted_session_row_is_deleted_at_login(client, kernel):
    """An attacker's own (here: expired) session planted in the victim's browser is
    neither reused nor left behind."""
    make_user(kernel, "ada@example.com")
    attacker = make_user(kernel, "mallory@example.com")
    planted = new_token()
    with kernel.db.transaction() as db:
        db.add(
            UserSession(
                token_hash=digest(planted),
                user_id=attacker.id,
                csrf_token=new_token(),
                expires_at=utcnow() - dt.timedelta(minutes=1),
            )
        )
    r = client.post(
        LOGIN,
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"Cookie": f"gakwaya_session={planted}"},
    )
    assert r.status_code == 200, r.text
    assert _new_session_token(r) != planted
    assert session_row(kernel, planted) is None


def test_signing_in_again_replaces_a_live_session(client, kernel):
    user = make_user(kernel, "ada@example.com")
    headers = make_session(kernel, user)
    old = headers["Cookie"].split(";")[0].split("=", 1)[1]
    # Login is public: a live session cookie without its CSRF token is ignored, not
    # refused, and the sign-in still replaces that session (no fixation).
    r = client.post(
        LOGIN,
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"Cookie": headers["Cookie"]},
    )
    assert r.status_code == 200, r.text
    new = _new_session_token(r)
    assert new != old
    assert session_row(kernel, old) is None
    assert session_row(kernel, new) is not None


# CSRF -----------------------------------------------------------------------------------


class _EchoPlugin:
    """A route that accepts a write from any member, to test the middleware's CSRF rule
    apart from identity's own routes (which refuse API keys)."""

    @hookimpl
    def register_routes(self):
        @post(
            "/api/v1/orgs/{org:str}/identity-test-echo",
            operation_id="identity_test_echo",
            opt={"permission": "org.read"},
            status_code=200,
            sync_to_thread=False,
        )
        def echo(org: FromPath[str]) -> dict[str, str]:
            return {"org": org}

        return [echo]


@pytest.fixture
def kernel(settings: Settings):
    k = Kernel.create(settings, extra_plugins=[("identity-test-echo", _EchoPlugin())])
    yield k
    k.close()


def test_cookie_writes_need_the_csrf_token(client, kernel):
    user = make_user(kernel, "ada@example.com")
    make_org(kernel, "acme", {user: "owner"})
    csrf = signed_in(client, "ada@example.com")
    url = "/api/v1/orgs/acme/identity-test-echo"
    missing = client.post(url)
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["detail"]
    assert client.post(url, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post(url, headers={"X-CSRF-Token": ""}).status_code == 403
    assert client.post(url, headers=csrf).status_code == 200
    # Identity's own writes too.
    assert client.patch("/api/v1/account", json={"name": "Ada"}).status_code == 403
    r = client.patch("/api/v1/account", json={"name": "Ada"}, headers=csrf)
    assert r.status_code == 200, r.text
    # Safe methods need no token.
    assert client.get("/api/v1/account").status_code == 200


def test_bearer_writes_need_no_csrf_token(client, kernel):
    user = make_user(kernel, "ada@example.com")
    org = make_org(kernel, "acme", {user: "owner"})
    key = make_key(kernel, user, org, ["write"])
    # Even with a session cookie in the jar, the key decides and no token is asked.
    signed_in(client, "ada@example.com")
    r = client.post("/api/v1/orgs/acme/identity-test-echo", headers=key)
    assert r.status_code == 200, r.text


def test_identity_routes_refuse_api_keys_except_reading_the_account(client, kernel):
    user = make_user(kernel, "ada@example.com")
    org = make_org(kernel, "acme", {user: "owner"})
    read = make_key(kernel, user, org, ["read"])
    admin = make_key(kernel, user, org, ["admin"])
    r = client.get("/api/v1/account", headers=read)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ada@example.com"
    assert client.get("/api/v1/account/sessions", headers=read).status_code == 403
    r = client.post(
        "/api/v1/account/password",
        headers=admin,
        json={"current_password": PASSWORD, "new_password": "another long passphrase 9"},
    )
    assert r.status_code == 403
    assert client.post("/api/v1/auth/logout", headers=admin).status_code == 403
