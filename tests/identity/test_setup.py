"""First-run setup: the one-time token, the API route and the HTML page."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import AuditRecord, SetupToken
from gakwaya.identity.setup import issue_setup_token
from gakwaya.security.tokens import digest
from tests.conftest import PASSWORD, make_user
from tests.identity.helpers import login, user_by_email

SETUP = "/api/v1/setup"


def _body(token: str, **extra: str) -> dict[str, str]:
    return {"token": token, "email": "root@example.com", "password": PASSWORD, **extra}


def test_valid_token_creates_the_first_superuser_once(client, kernel, fresh_client):
    token = issue_setup_token(kernel)
    assert token
    with kernel.db.session() as db:
        rows = db.scalars(select(SetupToken)).all()
    assert [r.token_hash for r in rows] == [digest(token)]  # only the digest is stored
    assert dt.timedelta(hours=23) < rows[0].expires_at - utcnow() <= dt.timedelta(hours=24)

    r = client.post(SETUP, json=_body(token, name="Root"))
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "root@example.com" and r.json()["name"] == "Root"
    user = user_by_email(kernel, "root@example.com")
    assert user.is_superuser
    assert login(fresh_client(), "root@example.com").status_code == 200

    # Reuse, and any later attempt: the panel is set up.
    r = client.post(SETUP, json=_body(token, email="second@example.com"))
    assert r.status_code == 410
    assert "sign in" in r.json()["detail"]
    assert issue_setup_token(kernel) is None

    with kernel.db.session() as db:
        audit = db.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "setup_complete")
            .order_by(AuditRecord.id)
        ).all()
    assert (audit[0].outcome, audit[0].actor_type, audit[0].actor_id) == (
        "success",
        "user",
        str(user.id),
    )


def test_setup_is_gone_once_any_user_exists(client, kernel):
    token = issue_setup_token(kernel)
    make_user(kernel, "someone@example.com")
    r = client.post(SETUP, json=_body(token))
    assert r.status_code == 410
    assert issue_setup_token(kernel) is None


def test_expired_token_is_refused(client, kernel):
    token = issue_setup_token(kernel)
    with kernel.db.transaction() as db:
        db.execute(update(SetupToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    r = client.post(SETUP, json=_body(token))
    assert r.status_code == 403
    assert "expired" in r.json()["detail"]
    with kernel.db.session() as db:
        assert db.scalars(select(SetupToken)).one().used_at is None


def test_wrong_token_is_refused(client, kernel):
    issue_setup_token(kernel)
    r = client.post(SETUP, json=_body("A" * 43))
    assert r.status_code == 403
    r = client.post(SETUP, json=_body("short"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "token"


def test_a_new_token_invalidates_the_earlier_one(client, kernel):
    first = issue_setup_token(kernel)
    second = issue_setup_token(kernel)
    assert first != second
    assert client.post(SETUP, json=_body(first)).status_code == 403
    assert client.post(SETUP, json=_body(second)).status_code == 201


def test_password_policy_applies_and_keeps_the_token(client, kernel):
    token = issue_setup_token(kernel)
    r = client.post(SETUP, json=_body(token, password="short"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "password"
    r = client.post(SETUP, json=_body(token, password="password1234"))
    assert r.status_code == 422
    assert "common" in r.json()["errors"][0]["rule"]
    r = client.post(SETUP, json=_body(token, email="-root@example.com"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "email"
    assert client.post(SETUP, json=_body(token)).status_code == 201


# The HTML page ---------------------------------------------------------------------------


def test_setup_page_renders_a_form_without_script(client, kernel):
    token = issue_setup_token(kernel)
    r = client.get("/setup", params={"token": token})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script" not in page.lower()
    assert re.search(r"<form method=\"post\" action=\"setup\">", page)
    assert f'name="token" value="{token}"' in page
    assert "src=" not in page and "href=" not in page  # no external assets
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert r.headers["referrer-policy"] == "no-referrer"


def test_setup_page_does_not_reflect_a_bad_token(client, kernel):
    issue_setup_token(kernel)
    evil = '"><script>alert(1)</script>'
    r = client.get("/setup", params={"token": evil})
    assert r.status_code == 200
    assert "<script>" not in r.text and "alert(1)" not in r.text


def test_setup_form_creates_the_user(client, kernel):
    token = issue_setup_token(kernel)
    form = {
        "token": token,
        "email": "root@example.com",
        "name": "",
        "password": PASSWORD,
        "password2": PASSWORD,
    }
    r = client.post("/setup", data=form)
    assert r.status_code == 201, r.text
    assert "root@example.com" in r.text and "Sign in" in r.text
    user = user_by_email(kernel, "root@example.com")
    assert user.is_superuser and user.name == "root"
    r = client.post("/setup", data=form)
    assert r.status_code == 410
    assert "already has an administrator" in r.text
    assert client.get("/setup", params={"token": token}).text.count("<form") == 0


def test_setup_form_errors_are_escaped(client, kernel):
    token = issue_setup_token(kernel)
    evil = '"><script>alert(1)</script>@example.com'
    r = client.post(
        "/setup", data={"token": token, "email": evil, "password": PASSWORD, "password2": PASSWORD}
    )
    assert r.status_code == 422
    assert "<script>" not in r.text
    assert "&lt;script&gt;" in r.text  # the typed value comes back, escaped
    assert "email:" in r.text
    r = client.post(
        "/setup",
        data={
            "token": token,
            "email": "root@example.com",
            "password": PASSWORD,
            "password2": "something else 12",
        },
    )
    assert r.status_code == 422
    assert "differ" in r.text
    r = client.post(
        "/setup",
        data={
            "token": token,
            "email": "root@example.com",
            "password": "short",
            "password2": "short",
        },
    )
    assert r.status_code == 422
    assert "at least 12 characters" in r.text
    # Nothing was created and the token still works.
    assert (
        client.post(
            "/setup",
            data={
                "token": token,
                "email": "root@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        ).status_code
        == 201
    )
