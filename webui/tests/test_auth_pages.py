"""Sign-in, two-factor sign-in and sign-out through the dashboard's forms."""

from __future__ import annotations

from typing import Any

import pyotp
from sqlalchemy import func, select
from webui_testlib import CSP, browser, csrf_of, sign_in, text_of

from gakwaya.db.models import AuditRecord
from gakwaya.kernel import Kernel
from tests.conftest import PASSWORD, World, make_user


def _audit_actions(kernel: Kernel) -> list[str]:
    with kernel.db.session() as db:
        return list(db.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


def test_anonymous_page_redirects_to_login(app: Any, client: Any) -> None:
    c = browser(app)
    r = c.get("/?tab=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/%3Ftab%3D1"
    assert r.headers["content-security-policy"] == CSP


def test_login_page_renders_with_security_headers(app: Any, client: Any) -> None:
    r = browser(app).get("/login?next=/orgs/acme")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert '<label for="f-email">' in r.text
    assert 'name="next" value="/orgs/acme"' in r.text
    assert "<script>" not in r.text and " style=" not in r.text


def test_next_never_leaves_the_site(app: Any, client: Any, kernel: Kernel) -> None:
    user = make_user(kernel)
    c = browser(app)
    r = c.post("/login", data={"email": user.email, "password": PASSWORD, "next": "//evil.example"})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_sign_in_and_out(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    c = browser(app)
    before = len(_audit_actions(kernel))
    sign_in(c, "owner@acme.example.com")
    # Exactly the API's audit row, not one more for the page.
    assert _audit_actions(kernel)[before:] == ["auth_login"]
    r = c.get("/")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert "Acme" in r.text and "Globex" not in r.text
    token = csrf_of(r.text)
    assert token == c.cookies.get("gakwaya_csrf")
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert _audit_actions(kernel)[-1] == "auth_logout"
    r = c.get("/login")
    assert "You are signed out." in r.text
    assert c.get("/").status_code == 303


def test_wrong_password_is_shown(app: Any, client: Any, world: World) -> None:
    c = browser(app)
    r = c.post("/login", data={"email": "owner@acme.example.com", "password": "nope nope nope"})
    assert r.status_code == 401
    assert "Wrong email or password." in text_of(r.text)
    assert 'value="owner@acme.example.com"' in r.text
    assert not c.cookies.get("gakwaya_csrf")


def test_invalid_email_is_named_beside_the_field(app: Any, client: Any) -> None:
    r = browser(app).post("/login", data={"email": "not an email; $(id)", "password": "x"})
    assert r.status_code == 422
    assert 'id="e-email"' in r.text


def test_two_factor_sign_in(app: Any, client: Any, kernel: Kernel) -> None:
    user = make_user(kernel)
    api = browser(app)
    r = api.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
    secret = api.post("/api/v1/account/2fa/enroll", json={"password": PASSWORD}, headers=csrf)
    assert secret.status_code in (200, 201), secret.text
    totp = pyotp.TOTP(secret.json()["secret"])
    confirm = api.post("/api/v1/account/2fa/confirm", json={"code": totp.now()}, headers=csrf)
    assert confirm.status_code in (200, 201), confirm.text
    codes = confirm.json()["recovery_codes"]

    c = browser(app)
    r = c.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/login/2fa?next=/"
    r = c.get("/login/2fa?next=/")
    assert "Authentication code" in r.text
    r = c.post("/login/2fa", data={"code": "000000", "next": "/"})
    assert r.status_code in (400, 401, 422)
    assert 'role="alert"' in r.text or "field-error" in r.text
    r = c.post("/login/2fa", data={"recovery_code": codes[0], "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert c.get("/").status_code == 200


def test_audit_count_matches_api(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    before = {
        "n": _count(kernel),
    }
    sign_in(browser(app), "viewer@acme.example.com")
    assert _count(kernel) == before["n"] + 1


def _count(kernel: Kernel) -> int:
    with kernel.db.session() as db:
        return int(db.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def test_signed_out_form_post_returns_to_the_form_page(app: Any, client: Any) -> None:
    c = browser(app)
    r = c.post(
        "/orgs/acme/projects",
        data={"name": "shop", "csrf_token": "x"},
        headers={"referer": "http://testserver.local/orgs/acme"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/orgs/acme"
    r = c.post(
        "/orgs/acme/projects",
        data={"name": "shop"},
        headers={"referer": "https://evil.example/orgs/acme"},
    )
    assert r.headers["location"] == "/login?next=/"
