"""Login throttling per account and per client address, kept in the database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from gakwaya.db.base import utcnow
from gakwaya.db.models import LoginThrottle
from gakwaya.errors import TooManyRequests
from gakwaya.identity import throttle
from tests.conftest import PASSWORD, make_user
from tests.identity.helpers import login, signed_in, throttle_rows

WRONG = "definitely not the password"


@pytest.fixture
def settings_overrides():
    return {
        "login_max_failures_account": 3,
        "login_max_failures_ip": 5,
        "login_window_seconds": 600,
        "login_lock_seconds": 120,
    }


def test_account_lock_refuses_even_the_right_password(client, kernel):
    make_user(kernel, "ada@example.com")
    for _ in range(3):
        assert login(client, "ada@example.com", WRONG).status_code == 401
    r = login(client, "ada@example.com", PASSWORD)
    assert r.status_code == 429, r.text
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 120
    assert "try again" in r.json()["detail"]
    assert "gakwaya_session" not in r.headers.get("set-cookie", "")
    # Another account from the same address is not locked (its own limit is 5).
    make_user(kernel, "grace@example.com")
    assert login(client, "grace@example.com").status_code == 200


def test_unknown_accounts_lock_the_same_way(client, kernel):
    for _ in range(3):
        assert login(client, "ghost@example.com", WRONG).status_code == 401
    r = login(client, "ghost@example.com", WRONG)
    assert r.status_code == 429
    assert "Retry-After" in r.headers


def test_lock_is_stored_and_expires(client, kernel):
    make_user(kernel, "ada@example.com")
    for _ in range(3):
        login(client, "ada@example.com", WRONG)
    rows = throttle_rows(kernel)
    lock = rows["account:ada@example.com"].locked_until
    assert lock is not None and lock > utcnow()
    # Another process would see the same row; move the lock into the past.
    with kernel.db.transaction() as db:
        db.execute(update(LoginThrottle).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    assert login(client, "ada@example.com").status_code == 200


def test_success_resets_the_account_counter(client, kernel, fresh_client):
    make_user(kernel, "ada@example.com")
    for _ in range(2):
        assert login(client, "ada@example.com", WRONG).status_code == 401
    assert throttle_rows(kernel)["account:ada@example.com"].failures == 2
    # (another client: this one holds no session, so its logins need no CSRF token)
    assert login(fresh_client(), "ada@example.com").status_code == 200
    assert "account:ada@example.com" not in throttle_rows(kernel)
    # Two more failures do not lock: the count started again.
    for _ in range(2):
        assert login(client, "ada@example.com", WRONG).status_code == 401
    assert login(client, "ada@example.com").status_code == 200


def test_failures_outside_the_window_start_a_new_count(client, kernel):
    make_user(kernel, "ada@example.com")
    for _ in range(2):
        login(client, "ada@example.com", WRONG)
    with kernel.db.transaction() as db:
        db.execute(
            update(LoginThrottle).values(window_started_at=utcnow() - dt.timedelta(seconds=601))
        )
    login(client, "ada@example.com", WRONG)
    assert throttle_rows(kernel)["account:ada@example.com"].failures == 1
    assert login(client, "ada@example.com").status_code == 200


def test_address_lock_spans_accounts(client, kernel):
    make_user(kernel, "ada@example.com")
    # One wrong password each for five different addresses: no account reaches 3.
    for i in range(5):
        assert login(client, f"guess{i}@example.com", WRONG).status_code == 401
    r = login(client, "ada@example.com", PASSWORD)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert throttle_rows(kernel)["ip:testclient"].locked_until is not None


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_count(client, kernel):
    make_user(kernel, "ada@example.com")
    for i in range(5):
        r = login(
            client, f"guess{i}@example.com", WRONG, headers={"X-Forwarded-For": f"198.51.100.{i}"}
        )
        assert r.status_code == 401
    # No trusted proxies: every attempt counted on the peer's own address.
    r = login(client, "ada@example.com", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 429
    assert [k for k in throttle_rows(kernel) if k.startswith("ip:")] == ["ip:testclient"]


def test_addresses_are_counted_apart(kernel):
    """The counts are per address (what client_ip resolved, proxies included)."""
    with kernel.db.transaction() as db:
        for _ in range(5):
            throttle.record_failure(db, kernel.settings, ["ip:198.51.100.1"])
    with kernel.db.session() as db:
        with pytest.raises(TooManyRequests):
            throttle.check(db, ["ip:198.51.100.1"])
        throttle.check(db, ["ip:198.51.100.2"])
        throttle.check(db, throttle.keys_for("ada@example.com", "198.51.100.2"))


def test_password_reauth_is_throttled(client, kernel):
    """A stolen session cannot be used to guess the password either."""
    make_user(kernel, "ada@example.com")
    csrf = signed_in(client, "ada@example.com")
    for _ in range(3):
        r = client.post("/api/v1/account/2fa/enroll", json={"password": WRONG}, headers=csrf)
        assert r.status_code == 403, r.text
        assert r.json()["errors"][0]["field"] == "password"
    r = client.post("/api/v1/account/2fa/enroll", json={"password": PASSWORD}, headers=csrf)
    assert r.status_code == 429
    assert "Retry-After" in r.headers
