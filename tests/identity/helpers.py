"""Helpers shared by the identity tests: sign-in through the API, TOTP codes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
from sqlalchemy import func, select

from gakwaya.db.models import LoginThrottle, User, UserSession
from gakwaya.kernel import Kernel
from gakwaya.security.tokens import digest
from tests.conftest import PASSWORD

LOGIN = "/api/v1/auth/login"
MFA = "/api/v1/auth/mfa"


def login(client: Any, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    return client.post(LOGIN, json={"email": email, "password": password}, **kwargs)


def signed_in(client: Any, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign ``client`` in (its cookie jar keeps the session); return the CSRF header."""
    r = login(client, email, password)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def session_token(client: Any) -> str | None:
    return client.cookies.get("gakwaya_session")


def session_row(kernel: Kernel, token: str) -> UserSession | None:
    with kernel.db.session() as db:
        return db.scalars(
            select(UserSession).where(UserSession.token_hash == digest(token))
        ).first()


def user_by_email(kernel: Kernel, email: str) -> User:
    with kernel.db.session() as db:
        return db.scalars(select(User).where(func.lower(User.email) == email.lower())).one()


def unused_code(kernel: Kernel, email: str, secret: str) -> str:
    """A valid code whose time step the server has not accepted yet (a code just used
    at confirmation must not be sent again: that is a replay)."""
    last = user_by_email(kernel, email).totp_last_step
    now_step = int(time.time() // 30)
    otp = pyotp.TOTP(secret)
    for step in (now_step, now_step + 1):
        if step > last:
            return otp.generate_otp(step)
    raise AssertionError("no unused step inside the window")


def enable_2fa(
    client: Any, kernel: Kernel, email: str, csrf: dict[str, str], password: str = PASSWORD
) -> tuple[str, list[str]]:
    """Enrol and confirm TOTP for the signed-in ``client``; return (secret, recovery codes)."""
    r = client.post("/api/v1/account/2fa/enroll", json={"password": password}, headers=csrf)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = client.post(
        "/api/v1/account/2fa/confirm",
        json={"code": unused_code(kernel, email, secret)},
        headers=csrf,
    )
    assert r.status_code == 200, r.text
    return secret, r.json()["recovery_codes"]


def throttle_rows(kernel: Kernel) -> dict[str, LoginThrottle]:
    with kernel.db.session() as db:
        return {row.key: row for row in db.scalars(select(LoginThrottle))}
