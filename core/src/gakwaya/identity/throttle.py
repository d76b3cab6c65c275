"""Failed sign-in counting, per account and per client address.

State lives in the ``login_throttle`` table, so every panel process sees the same
counters. A key collects failures within ``login_window_seconds``; reaching the
limit locks it for ``login_lock_seconds``. Callers check the lock *before* they
verify a password, so a correct password during a lock still gets a 429 and a
guesser learns nothing from it. Unknown addresses are counted like known ones,
so the lock does not reveal which accounts exist.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import LoginThrottle
from gakwaya.errors import TooManyRequests
from gakwaya.settings import Settings

ACCOUNT = "account:"
ADDRESS = "ip:"


def account_key(email: str) -> str:
    return ACCOUNT + email.strip().lower()


def address_key(ip: str) -> str | None:
    """None when the address is unknown: one shared bucket would lock out everyone."""
    return ADDRESS + ip[:64] if ip else None


def keys_for(email: str | None, ip: str) -> list[str]:
    keys = [account_key(email)] if email else []
    addr = address_key(ip)
    if addr:
        keys.append(addr)
    return keys


def check(db: Session, keys: Iterable[str], *, now: dt.datetime | None = None) -> None:
    """Raise :class:`TooManyRequests` (with Retry-After) when any key is locked."""
    now = now or utcnow()
    keys = list(keys)
    if not keys:
        return
    rows = db.scalars(
        select(LoginThrottle).where(
            LoginThrottle.key.in_(keys),
            LoginThrottle.locked_until.is_not(None),
            LoginThrottle.locked_until > now,
        )
    ).all()
    if not rows:
        return
    until = max(r.locked_until for r in rows if r.locked_until is not None)
    wait = max(1, math.ceil((until - now).total_seconds()))
    raise TooManyRequests(
        f"too many failed sign-in attempts; try again in {wait} seconds",
        retry_after=wait,
    )


def _limit(settings: Settings, key: str) -> int:
    if key.startswith(ACCOUNT):
        return settings.login_max_failures_account
    return settings.login_max_failures_ip


def _locked_row(db: Session, key: str, now: dt.datetime) -> LoginThrottle:
    """The row for ``key``, created if missing, locked for this transaction
    (PostgreSQL; SQLite's write transactions are serialized already)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return db.execute(
        select(LoginThrottle)
        .where(LoginThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def record_failure(
    db: Session, settings: Settings, keys: Iterable[str], *, now: dt.datetime | None = None
) -> None:
    """Count one failure on each key; lock the keys that reach their limit.

    The caller commits (also when it then answers with an error)."""
    now = now or utcnow()
    window = dt.timedelta(seconds=settings.login_window_seconds)
    for key in sorted(set(keys)):
        row = _locked_row(db, key, now)
        if row.locked_until is not None and row.locked_until <= now:
            row.locked_until = None
        if row.window_started_at + window <= now:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= _limit(settings, key):
            row.locked_until = now + dt.timedelta(seconds=settings.login_lock_seconds)
            row.failures = 0
            row.window_started_at = now
    db.flush()


def reset(db: Session, key: str) -> None:
    """Forget the failures of ``key`` (after a successful sign-in of that account)."""
    db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
