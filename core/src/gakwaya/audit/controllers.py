"""``GET /api/v1/orgs/{org}/audit``: the organization's audit log."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from sqlalchemy.orm import Session

from gakwaya.audit import services
from gakwaya.audit.schemas import AuditEntry
from gakwaya.auth.principal import OrgContext
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, parse_cursor


@get(
    "/api/v1/orgs/{org:str}/audit",
    operation_id="audit_list",
    tags=["audit"],
    opt={"permission": "audit.read"},
    sync_to_thread=True,
)
def audit_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    action: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    outcome: FromQuery[str | None] = None,
    target_type: FromQuery[str | None] = None,
    target_id: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[AuditEntry]:
    """The organization's audit rows, newest first.

    Filters: ``action`` (an operationId; ending in ``*`` matches a prefix), ``actor``
    (an actor id, or part of their email), ``outcome`` (success, denied, failure,
    error), ``target_type``, ``target_id``, ``since`` (inclusive) and ``until``
    (exclusive), both ISO 8601.
    """
    flt = services.make_filter(
        action=action,
        actor=actor,
        outcome=outcome,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    rows, nxt = services.list_entries(
        db, current_org.id, flt, limit=limit, cursor=parse_cursor(cursor)
    )
    return Page(items=[services.to_entry(r) for r in rows], next_cursor=nxt)
