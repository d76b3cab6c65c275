"""HTTP routes of API keys, under ``/api/v1/orgs/{org}/api-keys``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.orm import Session

from gakwaya.apikeys import services
from gakwaya.apikeys.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyView
from gakwaya.auth.principal import OrgContext, Principal, set_audit_target
from gakwaya.db.base import utcnow
from gakwaya.db.models import ApiKey
from gakwaya.kernel import Kernel
from gakwaya.orgs.events import commit_and_publish
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, parse_cursor
from gakwaya_sdk.events import Event

KEYS = "/api/v1/orgs/{org:str}/api-keys"


def key_status(key: ApiKey, now: dt.datetime | None = None) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def key_view(key: ApiKey, owner_email: str, now: dt.datetime | None = None) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_id=key.user_id,
        owner_email=owner_email,
        scopes=list(key.scopes),
        status=key_status(key, now),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@post(
    KEYS,
    operation_id="api_keys_create",
    tags=["api-keys"],
    sync_to_thread=True,
    status_code=201,
    opt={"permission": "api_keys.manage"},
)
def api_keys_create(
    request: Request[Any, Any, Any],
    data: JSONBody[ApiKeyCreate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> ApiKeyIssued:
    """Create an API key for yourself in this organization.

    Its scopes cannot exceed your role (viewer: read; developer: read, deploy,
    write; admin and owner: all) nor, when you call this with an API key, that
    key's scopes. The answer holds the key; it is never shown again.
    """
    set_audit_target(request, "api_key", "", name=data.name, scopes=[s.value for s in data.scopes])
    expires_at = services.resolve_expiry(
        expires_in_days=data.expires_in_days, expires_at=data.expires_at
    )
    events: list[Event] = []
    key, secret = services.create_key(
        db,
        org_id=current_org.id,
        user_id=principal.user_id,
        role=current_org.role,
        name=data.name,
        scopes=data.scopes,
        expires_at=expires_at,
        key_scopes=principal.scopes,
        created_by=principal.user_id,
        events=events,
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "api_key", key.id, prefix=key.prefix, scopes=list(key.scopes))
    view = key_view(key, principal.email)
    return ApiKeyIssued(**msgspec.structs.asdict(view), key=secret)


@get(
    KEYS,
    operation_id="api_keys_list",
    tags=["api-keys"],
    sync_to_thread=True,
    opt={"permission": "api_keys.read"},
)
def api_keys_list(
    db: NamedDependency[Session],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[ApiKeyView]:
    """Your keys in this organization; admins and owners see every member's.
    Never the key itself: recognise a key by its prefix."""
    only = None if services.sees_all_keys(current_org.role) else principal.user_id
    rows, nxt = services.list_keys(
        db, current_org.id, user_id=only, cursor=parse_cursor(cursor), limit=limit
    )
    now = utcnow()
    return Page(items=[key_view(k, e, now) for k, e in rows], next_cursor=nxt)


@delete(
    f"{KEYS}/{{key_id:int}}",
    operation_id="api_keys_revoke",
    tags=["api-keys"],
    sync_to_thread=True,
    opt={"permission": "api_keys.manage"},
)
def api_keys_revoke(
    request: Request[Any, Any, Any],
    key_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Revoke a key at once: your own, or (admins and owners) any key of the organization."""
    set_audit_target(request, "api_key", key_id)
    events: list[Event] = []
    key = services.revoke_key(
        db,
        org_id=current_org.id,
        key_id=key_id,
        actor_id=principal.user_id,
        actor_role=current_org.role,
        events=events,
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "api_key", key_id, prefix=key.prefix)


ROUTES = [api_keys_create, api_keys_list, api_keys_revoke]
