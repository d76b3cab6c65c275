"""Appending to and verifying the audit chain.

Each row's ``hash`` is an HMAC (keyed by the installation secret) over its own
fields, its id and the previous row's hash. ``audit_head`` holds the newest id
and a *seal*: an HMAC over that id and that row's hash. Editing a row breaks its
hash, deleting one breaks the next row's link, and deleting the newest rows no
longer matches the head; rewriting the head to point at an older row needs the
installation key, which a forger with only database access does not have.

Appends are serialized: on SQLite by the write lock taken at ``BEGIN IMMEDIATE``
(:meth:`Database.transaction`), on PostgreSQL by a transaction-scoped advisory
lock plus ``FOR UPDATE`` on the head row. Ids are assigned here, under that lock,
so that the hash covers the id at ``INSERT`` time and the row is never updated
afterwards (the table refuses ``UPDATE`` and ``DELETE`` through a trigger, see
migration ``0002``).

When an append finds the chain already broken (the head row is missing, or the
seal does not match), it links the new row to a value no row can have, so the
break stays visible to :meth:`AuditLog.verify` instead of being papered over by
a fresh, valid seal.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gakwaya.db import Database
from gakwaya.db.base import utcnow
from gakwaya.db.models import AuditHead, AuditRecord
from gakwaya.security.crypto import SecretBox

GENESIS = "0" * 64
# Linked to by the first row appended after the head was lost: no real hash is this.
_BROKEN = "f" * 64
# Keeps two panel processes on PostgreSQL from appending at the same moment.
_PG_LOCK_KEY = 0x6761_6B77  # "gakw"

# Column widths of audit_log: values are cut to fit before they are hashed, so what
# is stored is exactly what was hashed (PostgreSQL would refuse longer values).
_WIDTHS = {
    "actor_type": 16,
    "actor_id": 64,
    "actor_label": 300,
    "action": 100,
    "target_type": 50,
    "target_id": 100,
    "ip": 64,
    "outcome": 16,
}


class VerifyResult(msgspec.Struct, kw_only=True):
    ok: bool
    rows: int
    problem: str = ""
    first_bad_id: int | None = None


def _plain(detail: dict[str, Any] | None) -> dict[str, Any]:
    """``detail`` as it will read back from the JSON column (string keys, lists)."""
    if not detail:
        return {}
    out = json.loads(json.dumps(detail, default=str))
    return out if isinstance(out, dict) else {}


class AuditLog:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    # Hashing ---------------------------------------------------------------------------

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

    def _seal(self, last_id: int, last_hash: str) -> str:
        return self.box.mac(json.dumps(["audit-head", last_id, last_hash]).encode())

    # Appending ---------------------------------------------------------------------------

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
        session: Session | None = None,
    ) -> int:
        """Append one row and return its id.

        Without ``session`` the row is written in its own transaction. With one, it
        joins the caller's transaction (commit it to keep the row): use that when the
        audited change and its row must stand or fall together, or when the caller
        already holds SQLite's write lock (a second writer would wait for it).
        """
        values: dict[str, Any] = {
            "action": action,
            "outcome": outcome,
            "actor_type": actor_type,
            "actor_id": actor_id,
            "actor_label": actor_label,
            "target_type": target_type,
            "target_id": target_id,
            "ip": ip,
        }
        values = {k: str(v or "")[: _WIDTHS[k]] for k, v in values.items()}
        values.update(org_id=org_id, status_code=status_code, detail=_plain(detail))
        if session is not None:
            return self._append(session, **values)
        with self.db.transaction(write=True) as own:
            return self._append(own, **values)

    def _append(self, session: Session, **values: Any) -> int:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        head = session.get(AuditHead, 1, with_for_update=True, populate_existing=True)
        max_id = session.scalar(select(func.max(AuditRecord.id))) or 0
        if head is None:
            prev_hash = GENESIS if max_id == 0 else _BROKEN
            last_id = 0
        else:
            last_id = head.last_id
            linked = (
                session.scalar(select(AuditRecord.hash).where(AuditRecord.id == head.last_id))
                if head.last_id
                else GENESIS
            )
            if linked is not None and head.last_hash == self._seal(head.last_id, linked):
                prev_hash = linked
            else:
                prev_hash = _BROKEN
        row = AuditRecord(
            id=max(max_id, last_id) + 1, created_at=utcnow(), prev_hash=prev_hash, **values
        )
        row.hash = self._hash(row, prev_hash)
        session.add(row)
        if head is None:
            session.add(AuditHead(id=1, last_id=row.id, last_hash=self._seal(row.id, row.hash)))
        else:
            head.last_id = row.id
            head.last_hash = self._seal(row.id, row.hash)
        session.flush()
        return row.id

    # Verifying -----------------------------------------------------------------------------

    def _rows(self, session: Session, batch: int = 1000) -> Iterator[AuditRecord]:
        last = 0
        while True:
            rows = session.scalars(
                select(AuditRecord)
                .where(AuditRecord.id > last)
                .order_by(AuditRecord.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            session.expunge_all()  # keep memory flat on a long log
            yield from rows
            last = rows[-1].id

    def verify(self) -> VerifyResult:
        """Walk the whole chain in one snapshot; report the first row that does not fit."""
        with self.db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One snapshot for the walk and the head: appends that commit meanwhile
                # must not look like deleted rows. (SQLite's read transaction already
                # is one snapshot.)
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
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
                        "(a row was deleted or inserted before it)",
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
                    return VerifyResult(
                        ok=False,
                        rows=count,
                        first_bad_id=last_id,
                        problem="the chain head is missing (audit_head was deleted)",
                    )
                return VerifyResult(ok=True, rows=0)
            if head.last_id != last_id:
                return VerifyResult(
                    ok=False,
                    rows=count,
                    first_bad_id=last_id or None,
                    problem=f"the chain ends at row {last_id} but its head says row "
                    f"{head.last_id}: the newest rows were deleted or the head was edited",
                )
            if head.last_hash != self._seal(last_id, prev_hash):
                return VerifyResult(
                    ok=False,
                    rows=count,
                    first_bad_id=last_id or None,
                    problem=f"the chain head does not seal row {last_id}: "
                    "the head or the newest row was edited",
                )
            return VerifyResult(ok=True, rows=count)
