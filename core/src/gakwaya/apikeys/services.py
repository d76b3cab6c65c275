"""API keys: creation within the limits of the creator, listing, revocation.

A key belongs to one user in one organization. Its scopes can never exceed what
the user's role allows, nor (when a key creates a key) the creating key's own
scopes. The key itself is returned once by :func:`create_key`; only its SHA-256
and a short display prefix are stored.

Requests are still checked against both the member's *current* role and the
key's scopes by the middleware, so a member demoted after creating an admin key
is limited by the new role at once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from gakwaya.apikeys import events as ev, keys
from gakwaya.db.base import utcnow
from gakwaya.db.models import ApiKey, User
from gakwaya.errors import FieldError, NotFound, PermissionDenied
from gakwaya.orgs.scoped import get_in_org, in_org
from gakwaya.pagination import next_cursor
from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Role, Scope, effective_scopes

MAX_LIFETIME_DAYS = 3650

#: The scopes a member of each role may put on a key.
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.DEVELOPER: frozenset({Scope.READ, Scope.DEPLOY, Scope.WRITE}),
    Role.ADMIN: frozenset(Scope),
    Role.OWNER: frozenset(Scope),
}


def _names(scopes: frozenset[Scope] | set[Scope]) -> str:
    order = list(Scope)
    return ", ".join(s.value for s in sorted(scopes, key=order.index)) or "none"


def resolve_expiry(
    *,
    expires_in_days: int | None,
    expires_at: dt.datetime | None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """One expiry from either form; None means the key does not expire."""
    now = now or utcnow()
    if expires_in_days is not None and expires_at is not None:
        raise FieldError("expires_at", "give either expires_in_days or expires_at, not both")
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_LIFETIME_DAYS:
            raise FieldError("expires_in_days", f"must be between 1 and {MAX_LIFETIME_DAYS}")
        return now + dt.timedelta(days=expires_in_days)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise FieldError("expires_at", "must include a time zone, e.g. 2030-01-31T00:00:00Z")
        if expires_at <= now:
            raise FieldError("expires_at", "must be in the future")
        if expires_at > now + dt.timedelta(days=MAX_LIFETIME_DAYS):
            raise FieldError("expires_at", f"must be at most {MAX_LIFETIME_DAYS} days ahead")
        return expires_at.astimezone(dt.UTC)
    return None


def check_scopes(
    scopes: list[Scope], *, role: Role, key_scopes: frozenset[Scope] | None
) -> list[str]:
    """The scopes to store, after checking them against the role and the creating key."""
    if not scopes:
        raise FieldError("scopes", "name at least one scope: read, deploy, write or admin")
    wanted = effective_scopes(scopes)
    beyond_role = wanted - ROLE_SCOPES[role]
    if beyond_role:
        raise PermissionDenied(
            f"scopes: your role {role.value!r} allows keys with at most "
            f"{_names(ROLE_SCOPES[role])}; {_names(beyond_role)} is beyond it"
        )
    if key_scopes is not None and wanted - key_scopes:
        raise PermissionDenied(
            f"scopes: a key created with an API key cannot have more than that key's scopes "
            f"({_names(key_scopes)}); {_names(wanted - key_scopes)} is beyond them"
        )
    order = list(Scope)
    return [s.value for s in sorted(set(scopes), key=order.index)]


def create_key(
    db: Session,
    *,
    org_id: int,
    user_id: int,
    role: Role,
    name: str,
    scopes: list[Scope],
    expires_at: dt.datetime | None,
    key_scopes: frozenset[Scope] | None,
    created_by: int | None,
    events: list[Event],
) -> tuple[ApiKey, str]:
    """Create a key for ``user_id`` (whose role in the org is ``role``); return it and
    the secret, which is not stored and cannot be shown again."""
    stored = check_scopes(scopes, role=role, key_scopes=key_scopes)
    if expires_at is not None and expires_at <= utcnow():
        raise FieldError("expires_at", "must be in the future")
    secret = keys.generate()
    key = ApiKey(
        org_id=org_id,
        user_id=user_id,
        name=name,
        prefix=keys.display_prefix(secret),
        key_hash=keys.key_digest(secret),
        scopes=stored,
        created_at=utcnow(),
        expires_at=expires_at,
    )
    db.add(key)
    db.flush()
    events.append(
        ev.ApiKeyCreated(
            org_id=org_id,
            key_id=key.id,
            user_id=user_id,
            name=name,
            prefix=key.prefix,
            scopes=stored,
            expires_at=expires_at.isoformat() if expires_at else None,
            created_by=created_by,
        )
    )
    return key, secret


def sees_all_keys(role: Role) -> bool:
    return role.rank >= Role.ADMIN.rank


def list_keys(
    db: Session,
    org_id: int,
    *,
    user_id: int | None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[tuple[ApiKey, str]], str | None]:
    """Keys of the org, newest first: only ``user_id``'s unless it is None (all keys)."""
    query = in_org(ApiKey, org_id).add_columns(User.email).join(User, User.id == ApiKey.user_id)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    if cursor is not None:
        query = query.where(ApiKey.id < cursor)
    rows = db.execute(query.order_by(ApiKey.id.desc()).limit(limit + 1)).all()
    return (
        [(key, email) for key, email in rows[:limit]],
        next_cursor([key.id for key, _ in rows], limit),
    )


def revoke_key(
    db: Session,
    *,
    org_id: int,
    key_id: int,
    actor_id: int | None,
    actor_role: Role | None,
    events: list[Event],
) -> ApiKey:
    """Revoke a key of the org. A member below admin revokes only their own keys;
    another member's key is a 404 to them, as it is absent from their list.
    ``actor_role=None`` is the operator (CLI). Revoking twice is harmless."""
    key = get_in_org(db, ApiKey, key_id, org_id, what="API key", for_update=True)
    if actor_role is not None and not sees_all_keys(actor_role) and key.user_id != actor_id:
        raise NotFound(f"API key {key_id} not found in this organization")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.flush()
        events.append(
            ev.ApiKeyRevoked(
                org_id=org_id,
                key_id=key.id,
                user_id=key.user_id,
                prefix=key.prefix,
                reason="revoked",
                revoked_by=actor_id,
            )
        )
    return key


def revoke_member_keys(
    db: Session, *, org_id: int, user_id: int, actor_id: int | None, events: list[Event]
) -> int:
    """Revoke every live key of ``user_id`` in the org (they are leaving it)."""
    now = utcnow()
    live = db.scalars(
        in_org(ApiKey, org_id).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    ).all()
    for key in live:
        key.revoked_at = now
        events.append(
            ev.ApiKeyRevoked(
                org_id=org_id,
                key_id=key.id,
                user_id=user_id,
                prefix=key.prefix,
                reason="member_removed",
                revoked_by=actor_id,
            )
        )
    db.flush()
    return len(live)


def key_owner_email(db: Session, key: ApiKey) -> str:
    return db.scalar(select(User.email).where(User.id == key.user_id)) or ""
