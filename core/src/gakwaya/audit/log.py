"""Appending to and verifying the audit chain.

Each row's ``hash`` is an HMAC (keyed by the installation secret) over its own
fields and the previous row's hash; ``audit_head`` holds the newest id and
hash. Editing a row breaks its hash, deleting one breaks the next row's link,
and deleting the newest rows no longer matches the head. Without the
installation key a forger cannot recompute the chain.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gakwaya.db import Database
from gakwaya.db.base import utcnow
from gakwaya.db.models import AuditHead, AuditRecord
from gakwaya.security.crypto import SecretBox

GENESIS = "0" * 64
# Keeps two panel processes on PostgreSQL from appending at the same moment.
_PG_LOCK_KEY = 0x6761_6B77  # "gakw"


class VerifyResult(msgspec.Struct, kw_only=True):
    ok: bool
    rows: int
    problem: str = ""
    first_bad_id: int | None = None


class AuditLog:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def _hash(self, row: AuditRecord, prev_hash: str) -> str:
        fields = [
            row.id,
            row.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            row.actor_type,
            row.actor_id,
            row.actor_label,
            row.org_id,
            row.action,
            row.target_type,
            row.target_id,
            row.ip,
            row.outcome,
            row.status_code,
            row.detail or {},
            prev_hash,
        ]
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        return self.box.mac(canonical.encode())

    def record(
        self,
        *,
        action: str,
        outcome: str,
        actor_type: str,
        actor_id: str = "",
        actor_label: str = "",
        org_id: int | None = None,
        target_type: str = "",
        target_id: str = "",
        ip: str = "",
        status_code: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Append one row in its own transaction and return its id."""
        with self.db.transaction() as session:
            return self._append(
                session,
                action=action,
                outcome=outcome,
                actor_type=actor_type,
                actor_id=actor_id,
                actor_label=actor_label[:300],
                org_id=org_id,
                target_type=target_type[:50],
                target_id=target_id[:100],
                ip=ip[:64],
                status_code=status_code,
                detail=detail or {},
            )

    def _append(self, session: Session, **values: Any) -> int:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        head = session.get(AuditHead, 1, with_for_update=True)
        prev_hash = head.last_hash if head is not None else GENESIS
        row = AuditRecord(created_at=utcnow(), prev_hash=prev_hash, hash="", **values)
        session.add(row)
        session.flush()  # assigns the id, which the hash covers
        row.hash = self._hash(row, prev_hash)
        if head is None:
            session.add(AuditHead(id=1, last_id=row.id, last_hash=row.hash))
        else:
            head.last_id = row.id
            head.last_hash = row.hash
        return row.id

    def _rows(self, session: Session, batch: int = 1000) -> Iterator[AuditRecord]:
        last = 0
        while True:
            rows = session.scalars(
                select(AuditRecord).where(AuditRecord.id > last).order_by(AuditRecord.id).limit(batch)
            ).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def verify(self) -> VerifyResult:
        """Walk the whole chain; report the first row that does not fit."""
        with self.db.session() as session:
            prev_hash = GENESIS
            count = 0
            last_id = 0
            for row in self._rows(session):
                count += 1
                if row.prev_hash != prev_hash:
                    return VerifyResult(
                        ok=False,
                        rows=count,
                        first_bad_id=row.id,
                        problem=f"row {row.id} does not link to the row before it "
                        "(a row was deleted or inserted)",
                    )
                if self._hash(row, prev_hash) != row.hash:
                    return VerifyResult(
                        ok=False,
                        rows=count,
                        first_bad_id=row.id,
                        problem=f"row {row.id} was modified after it was written",
                    )
                prev_hash = row.hash
                last_id = row.id
            head = session.get(AuditHead, 1)
            if head is None:
                if count:
                    return VerifyResult(ok=False, rows=count, problem="the chain head is missing")
                return VerifyResult(ok=True, rows=0)
            if head.last_id != last_id or head.last_hash != prev_hash:
                return VerifyResult(
                    ok=False,
                    rows=count,
                    first_bad_id=last_id or None,
                    problem=f"the chain ends at row {last_id} but its head says row "
                    f"{head.last_id}: the newest rows were deleted or the head was edited",
                )
            return VerifyResult(ok=True, rows=count)
