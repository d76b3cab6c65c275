"""The account pages: name and email, password, two-factor enrolment with a QR code
and recovery codes, sessions. Through the dashboard's forms, against the real API."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import unquote

import pyotp
from sqlalchemy import select
from webui_testlib import CSP, browser, csrf_of, sign_in, text_of

from gakwaya.db.models import AuditRecord, User
from gakwaya.kernel import Kernel
from tests.conftest import PASSWORD, make_user

NEW_PASSWORD = "an even longer passphrase 99"


def _user(kernel: Kernel, email: str) -> User:
    with kernel.db.session() as db:
        user = db.scalar(select(User).where(User.email == email))
        assert user is not None
        db.expunge(user)
        return user


def _signed_in(app: Any, kernel: Kernel, email: str | None = None) -> tuple[Any, str]:
    user = make_user(kernel, email)
    c = browser(app)
    sign_in(c, user.email)
    return c, user.email


def test_anonymous_is_sent_to_sign_in(app: Any, client: Any) -> None:
    for path in ("/account", "/account/password", "/account/2fa", "/account/sessions"):
        r = browser(app).get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login?next=" + path


def test_account_pages_render(app: Any, client: Any, kernel: Kernel) -> None:
    c, email = _signed_in(app, kernel)
    for path in ("/account", "/account/password", "/account/2fa", "/account/sessions"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-security-policy"] == CSP
        assert "<script>" not in r.text and " style=" not in r.text
        assert 'aria-current="page"' in r.text
    assert email in text_of(c.get("/account").text)


def test_change_name_and_the_api_message_beside_the_field(
    app: Any, client: Any, kernel: Kernel
) -> None:
    c, email = _signed_in(app, kernel)
    token = csrf_of(c.get("/account").text)
    r = c.post("/account", data={"csrf_token": token, "name": "Ada Lovelace"})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    r = c.get("/account")
    assert "Your name is saved." in r.text and "Ada Lovelace" in r.text
    assert _user(kernel, email).name == "Ada Lovelace"

    bad = "x" * 300
    r = c.post("/account", data={"csrf_token": token, "name": bad})
    assert r.status_code == 422
    assert 'id="e-name"' in r.text and 'aria-invalid="true"' in r.text
    assert "name" in text_of(r.text.split('id="e-name"', 1)[1])[:200]
    assert f'value="{bad}"' in r.text  # what was typed is kept
    assert _user(kernel, email).name == "Ada Lovelace"


def test_forms_without_the_csrf_token_change_nothing(app: Any, client: Any, kernel: Kernel) -> None:
    c, email = _signed_in(app, kernel)
    before = _user(kernel, email).name
    r = c.post("/account", data={"name": "Mallory"})
    assert r.status_code == 403
    assert 'role="alert"' in r.text
    r = c.post("/account", data={"csrf_token": "not-the-token", "name": "Mallory"})
    assert r.status_code == 403
    r = c.post("/account/2fa/enroll", data={"password": PASSWORD})
    assert r.status_code == 403
    assert _user(kernel, email).name == before
    assert _user(kernel, email).totp_secret is None


def test_change_email(app: Any, client: Any, kernel: Kernel) -> None:
    c, _ = _signed_in(app, kernel)
    token = csrf_of(c.get("/account").text)
    r = c.post(
        "/account/email",
        data={"csrf_token": token, "email": "moved@example.com", "password": "wrong password 1"},
    )
    assert r.status_code == 403
    assert 'id="e-password"' in r.text and "is not your current password" in r.text
    assert 'value="moved@example.com"' in r.text
    r = c.post(
        "/account/email",
        data={"csrf_token": token, "email": "not an email; $(id)", "password": PASSWORD},
    )
    assert r.status_code == 422 and 'id="e-email"' in r.text
    r = c.post(
        "/account/email",
        data={"csrf_token": token, "email": "moved@example.com", "password": PASSWORD},
    )
    assert r.status_code == 303
    assert "moved@example.com" in unquote(c.get("/account").text)
    sign_in(browser(app), "moved@example.com")


def test_change_password(app: Any, client: Any, kernel: Kernel) -> None:
    c, email = _signed_in(app, kernel)
    other = browser(app)
    sign_in(other, email)
    token = csrf_of(c.get("/account/password").text)
    form = {"csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD}

    r = c.post("/account/password", data={**form, "new_password2": NEW_PASSWORD + "x"})
    assert r.status_code == 422 and "the two new passwords differ" in r.text
    r = c.post(
        "/account/password",
        data={**form, "current_password": "wrong password 1", "new_password2": NEW_PASSWORD},
    )
    assert r.status_code == 403
    assert 'id="e-current_password"' in r.text and "is not your current password" in r.text
    r = c.post(
        "/account/password",
        data={**form, "new_password": "short", "new_password2": "short"},
    )
    assert r.status_code == 422 and 'id="e-new_password"' in r.text

    r = c.post("/account/password", data={**form, "new_password2": NEW_PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert "Password changed" in c.get("/account").text
    # The other browser was signed out; the new password signs in.
    assert other.get("/account").status_code == 303
    sign_in(browser(app), email, NEW_PASSWORD)


def _qr_svg(page_html: str) -> str:
    """The QR code's SVG document, from the page's data: URI."""
    m = re.search(r'<img src="data:image/svg\+xml;charset=utf-8,([^"]+)"', page_html)
    assert m, "no QR code image on the page"
    return unquote(html.unescape(m.group(1)))


def _hidden(page_html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page_html)
    assert m, f"no hidden {name}"
    return html.unescape(m.group(1))


def test_two_factor_enrolment_with_qr_code_and_recovery_codes(
    app: Any, client: Any, kernel: Kernel
) -> None:
    c, email = _signed_in(app, kernel)
    r = c.get("/account/2fa")
    assert "Off" in text_of(r.text)
    token = csrf_of(r.text)

    r = c.post("/account/2fa/enroll", data={"csrf_token": token, "password": "wrong password 1"})
    assert r.status_code == 403 and "is not your current password" in r.text

    r = c.post("/account/2fa/enroll", data={"csrf_token": token, "password": PASSWORD})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    svg = _qr_svg(r.text)
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    uri = _hidden(r.text, "otpauth_uri")
    assert uri.startswith("otpauth://totp/")
    secret = re.search(r"secret=([A-Z2-7]+)", uri)
    assert secret
    shown = re.search(r'data-testid="totp-secret">([^<]+)<', r.text)
    assert shown and shown.group(1).replace(" ", "") == secret.group(1)
    totp = pyotp.TOTP(secret.group(1))

    # A wrong code: the same QR code again, the API's message beside the field.
    r = c.post("/account/2fa/confirm", data={"csrf_token": token, "otpauth_uri": uri, "code": "1"})
    assert r.status_code == 422
    assert 'id="e-code"' in r.text and _qr_svg(r.text) == svg
    assert _user(kernel, email).totp_enabled is False

    r = c.post(
        "/account/2fa/confirm",
        data={"csrf_token": token, "otpauth_uri": uri, "code": totp.now()},
    )
    assert r.status_code == 200, r.text
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", r.text)
    assert len(codes) == 10
    assert "shown only this once" in r.text
    assert _user(kernel, email).totp_enabled is True
    # The form sent again (a reload): the page says it is on, and shows no secret.
    r = c.post(
        "/account/2fa/confirm",
        data={"csrf_token": token, "otpauth_uri": uri, "code": totp.now()},
    )
    assert r.status_code == 409 and "already on" in r.text
    assert "data:image/svg" not in r.text and secret.group(1) not in r.text
    r = c.get("/account/2fa")
    assert "On" in text_of(r.text)
    assert not any(code in r.text for code in codes)

    # Signing in now asks for the second factor; a recovery code works once.
    other = browser(app)
    r = other.post("/login", data={"email": email, "password": PASSWORD, "next": "/account"})
    assert r.headers["location"].startswith("/login/2fa")
    r = other.post("/login/2fa", data={"recovery_code": codes[0], "next": "/account"})
    assert r.status_code == 303 and r.headers["location"] == "/account"

    # New recovery codes replace the old ones.
    r = c.post("/account/2fa/recovery-codes", data={"csrf_token": token, "password": PASSWORD})
    fresh = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", r.text)
    assert len(fresh) == 10 and not set(fresh) & set(codes)

    # Off again: password and a current code (the next step's: the one used to
    # confirm cannot be replayed).
    later = totp.at(time.time() + 30)
    r = c.post(
        "/account/2fa/disable",
        data={"csrf_token": token, "password": "wrong password 1", "code": later},
    )
    assert r.status_code == 403 and 'id="f-disable-password-error"' in r.text
    r = c.post(
        "/account/2fa/disable", data={"csrf_token": token, "password": PASSWORD, "code": later}
    )
    assert r.status_code == 303 and r.headers["location"] == "/account/2fa"
    assert "Two-factor authentication is off" in c.get("/account/2fa").text
    assert _user(kernel, email).totp_enabled is False


def test_a_tampered_otpauth_uri_is_not_drawn(app: Any, client: Any, kernel: Kernel) -> None:
    c, _ = _signed_in(app, kernel)
    token = csrf_of(c.get("/account/2fa").text)
    c.post("/account/2fa/enroll", data={"csrf_token": token, "password": PASSWORD})
    r = c.post(
        "/account/2fa/confirm",
        data={"csrf_token": token, "otpauth_uri": "https://evil.example/<b>", "code": "1"},
    )
    assert r.status_code == 422
    assert "data:image/svg" not in r.text and "evil.example" not in r.text
    assert 'action="/account/2fa/enroll"' in r.text  # start over


def test_sessions_list_and_revoke(app: Any, client: Any, kernel: Kernel) -> None:
    c, email = _signed_in(app, kernel)
    other = browser(app)
    sign_in(other, email)
    r = c.get("/account/sessions")
    assert "(this browser)" in r.text
    ids = [int(i) for i in re.findall(r'action="/account/sessions/(\d+)/revoke"', r.text)]
    assert len(ids) == 2
    token = csrf_of(r.text)
    current = int(
        re.search(
            r'\(this browser\).*?action="/account/sessions/(\d+)/revoke"', r.text, re.S
        ).group(1)  # type: ignore[union-attr]
    )
    (theirs,) = [i for i in ids if i != current]

    # Without JavaScript: a confirmation page first, nothing revoked yet.
    r = c.post(f"/account/sessions/{theirs}/revoke", data={"csrf_token": token})
    assert r.status_code == 200
    assert 'name="confirmed" value="yes"' in r.text
    assert other.get("/account").status_code == 200

    r = c.post(f"/account/sessions/{theirs}/revoke", data={"csrf_token": token, "confirmed": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/account/sessions"
    assert other.get("/account").status_code == 303

    # Someone else's session id is the API's 404, nothing revoked.
    stranger = browser(app)
    sign_in(stranger, make_user(kernel).email)
    r = stranger.post(
        f"/account/sessions/{current}/revoke",
        data={"csrf_token": csrf_of(stranger.get("/account").text), "confirmed": "yes"},
    )
    assert r.status_code == 404
    assert c.get("/account").status_code == 200

    # Revoking this browser's own session signs it out.
    r = c.post(
        f"/account/sessions/{current}/revoke", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/account").status_code == 303


def test_account_changes_are_audited_once(app: Any, client: Any, kernel: Kernel) -> None:
    c, _ = _signed_in(app, kernel)
    token = csrf_of(c.get("/account").text)
    with kernel.db.session() as db:
        before = db.scalar(select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(1)) or 0
    c.post("/account", data={"csrf_token": token, "name": "Audited"})
    with kernel.db.session() as db:
        actions = list(db.scalars(select(AuditRecord.action).where(AuditRecord.id > before)))
    assert actions == ["account_update"]
