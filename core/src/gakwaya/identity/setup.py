"""First-run setup: a one-time token that creates the first administrator.

There is no default account. While no user exists, ``gakwaya serve`` asks
:func:`issue_setup_token` for a link; only the token's digest is stored, it
expires after a day, works once, and is refused as soon as any user exists
(``gakwaya admin create`` is the other way in).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import SetupToken, User
from gakwaya.errors import Gone, PermissionDenied
from gakwaya.identity import services
from gakwaya.security.tokens import digest, new_token

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

SETUP_TOKEN_TTL = dt.timedelta(hours=24)
ALREADY_SET_UP = (
    "this panel is already set up: sign in with POST /api/v1/auth/login, "
    "or ask an administrator (gakwaya admin create) for an account"
)


def has_users(db: Session) -> bool:
    return db.scalar(select(User.id).limit(1)) is not None


def issue_setup_token(kernel: Kernel) -> str | None:
    """A fresh setup token while there are no users (earlier unused ones stop
    working); None once anyone can sign in."""
    with kernel.db.transaction() as db:
        if has_users(db):
            return None
        services.invalidate_setup_tokens(db)
        token = new_token()
        now = utcnow()
        db.add(
            SetupToken(token_hash=digest(token), created_at=now, expires_at=now + SETUP_TOKEN_TTL)
        )
    return token


def complete_setup(
    db: Session,
    kernel: Kernel,
    *,
    token: str,
    email: str,
    password: str,
    name: str | None,
) -> User:
    """Create the first user, a superuser, with a valid setup token. The caller commits."""
    if has_users(db):
        raise Gone(ALREADY_SET_UP)
    now = utcnow()
    # Conditional update: of two requests racing with the same token, one wins.
    claimed = db.execute(
        update(SetupToken)
        .where(
            SetupToken.token_hash == digest(token),
            SetupToken.used_at.is_(None),
            SetupToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise PermissionDenied(
            "the setup token is not valid, was used already or has expired: restart "
            "'gakwaya serve' for a new link, or run 'gakwaya admin create'"
        )
    user = services.create_user(
        db, kernel, email=email, password=password, name=name, superuser=True
    )
    services.invalidate_setup_tokens(db)
    return user
