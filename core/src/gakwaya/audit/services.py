"""Reading the audit log of one organization (API and CLI share these)."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gakwaya.audit.schemas import AuditEntry
from gakwaya.db.models import AuditRecord, Organization
from gakwaya.errors import FieldError, NotFound
from gakwaya.pagination import DEFAULT_LIMIT, next_cursor

OUTCOMES = ("success", "denied", "failure", "error")
TIME_RULE = "an ISO 8601 date or date and time, e.g. 2025-01-31 or 2025-01-31T12:00:00Z"
#: Longest value accepted by the text filters (the widest audit column).
MAX_FILTER_LENGTH = 300


class AuditFilter(msgspec.Struct, kw_only=True):
    """What to keep. Text filters match exactly, except ``actor`` (see :func:`make_filter`)
    and ``action`` ending in ``*`` (a prefix). ``since`` is inclusive, ``until`` not."""

    action: str | None = None
    actor: str | None = None
    outcome: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def parse_time(field: str, value: str | None) -> dt.datetime | None:
    """ISO 8601 → aware UTC datetime; a time without offset is taken as UTC."""
    if value is None or value == "":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(field, TIME_RULE) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _text(field: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise FieldError(field, f"at most {MAX_FILTER_LENGTH} characters, no control characters")
    return value


def make_filter(
    *,
    action: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    """Validate raw filter values (query parameters, CLI options); 422 names the field.

    ``actor`` is an actor id when it is all digits (a user id, or an API key id),
    otherwise a case-insensitive part of the actor's label (their email).
    """
    if outcome not in (None, "") and outcome not in OUTCOMES:
        raise FieldError("outcome", f"one of {', '.join(OUTCOMES)}")
    flt = AuditFilter(
        action=_text("action", action),
        actor=_text("actor", actor),
        outcome=outcome or None,
        target_type=_text("target_type", target_type),
        target_id=_text("target_id", target_id),
        since=parse_time("since", since),
        until=parse_time("until", until),
    )
    if flt.since and flt.until and flt.since >= flt.until:
        raise FieldError("until", "must be later than since")
    return flt


def list_entries(
    db: Session,
    org_id: int,
    flt: AuditFilter,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: int | None = None,
) -> tuple[list[AuditRecord], str | None]:
    """One page of the organization's rows, newest first, and the next cursor."""
    query = select(AuditRecord).where(AuditRecord.org_id == org_id)
    if cursor is not None:
        query = query.where(AuditRecord.id < cursor)
    if flt.action:
        if flt.action.endswith("*"):
            query = query.where(AuditRecord.action.startswith(flt.action[:-1], autoescape=True))
        else:
            query = query.where(AuditRecord.action == flt.action)
    if flt.actor:
        if flt.actor.isdigit():
            query = query.where(AuditRecord.actor_id == flt.actor)
        else:
            query = query.where(
                func.lower(AuditRecord.actor_label).contains(flt.actor.lower(), autoescape=True)
            )
    if flt.outcome:
        query = query.where(AuditRecord.outcome == flt.outcome)
    if flt.target_type:
        query = query.where(AuditRecord.target_type == flt.target_type)
    if flt.target_id:
        query = query.where(AuditRecord.target_id == flt.target_id)
    if flt.since:
        query = query.where(AuditRecord.created_at >= flt.since)
    if flt.until:
        query = query.where(AuditRecord.created_at < flt.until)
    rows = list(db.scalars(query.order_by(AuditRecord.id.desc()).limit(limit + 1)))
    return rows[:limit], next_cursor([r.id for r in rows], limit)


def org_by_slug(db: Session, slug: str) -> Organization:
    org = db.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise NotFound(f"organization {slug!r} not found")
    return org


def to_entry(row: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        created_at=row.created_at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        actor_label=row.actor_label,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        ip=row.ip,
        outcome=row.outcome,
        status_code=row.status_code,
        detail=dict(row.detail or {}),
    )
