"""Reading stored events of one organization (list and live stream share these)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gakwaya.db.models import StoredEvent
from gakwaya.errors import FieldError
from gakwaya.events.schemas import EVENT_ID_RULE, TYPE_PATTERN, TYPE_RULE, EventEnvelope
from gakwaya.pagination import DEFAULT_LIMIT, next_cursor

_TYPE = re.compile(TYPE_PATTERN)


def check_type(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 100 or not _TYPE.match(value):
        raise FieldError("type", TYPE_RULE)
    return value


def parse_event_id(field: str, value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        raise FieldError(field, EVENT_ID_RULE)
    return int(value)


def list_events(
    db: Session,
    org_id: int,
    *,
    type_name: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: int | None = None,
) -> tuple[list[StoredEvent], str | None]:
    """One page of the organization's events, newest first, and the next cursor."""
    query = select(StoredEvent).where(StoredEvent.org_id == org_id)
    if cursor is not None:
        query = query.where(StoredEvent.id < cursor)
    if type_name:
        if type_name.endswith(".*"):
            query = query.where(StoredEvent.type.startswith(type_name[:-1], autoescape=True))
        else:
            query = query.where(StoredEvent.type == type_name)
    rows = list(db.scalars(query.order_by(StoredEvent.id.desc()).limit(limit + 1)))
    return rows[:limit], next_cursor([r.id for r in rows], limit)


def events_after(db: Session, org_id: int, after: int, limit: int = 100) -> list[StoredEvent]:
    """The organization's events with id > ``after``, oldest first (a stream's next batch)."""
    return list(
        db.scalars(
            select(StoredEvent)
            .where(StoredEvent.org_id == org_id, StoredEvent.id > after)
            .order_by(StoredEvent.id)
            .limit(limit)
        )
    )


def latest_id(db: Session, org_id: int) -> int:
    """The newest event id of the organization, 0 when it has none."""
    return int(db.scalar(select(func.max(StoredEvent.id)).where(StoredEvent.org_id == org_id)) or 0)


def to_envelope(row: StoredEvent) -> EventEnvelope:
    created = row.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return EventEnvelope(
        id=row.id,
        type=row.type,
        org_id=row.org_id,
        created_at=created,
        payload=dict(row.payload or {}),
    )
