"""The hash chain: appends, tampering detection, the append-only triggers, concurrency."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from gakwaya.audit.log import AuditLog
from gakwaya.db.models import AuditHead, AuditRecord
from gakwaya.kernel import Kernel
from tests.audit.helpers import cli, tamper


def _append(kernel: Kernel, n: int, **kw: object) -> list[int]:
    values = {"action": "things_update", "outcome": "success", "actor_type": "user"}
    values.update(kw)
    return [kernel.audit.record(target_id=str(i), **values) for i in range(n)]  # type: ignore[arg-type]


def test_empty_log_is_intact(kernel: Kernel) -> None:
    result = kernel.audit.verify()
    assert result.ok and result.rows == 0
    out = cli(kernel, "audit", "verify")
    assert out.exit_code == 0, out.output
    assert "audit log intact: 0 rows" in out.output


def test_appended_rows_chain_and_verify(kernel: Kernel) -> None:
    ids = _append(kernel, 5, detail={"role": "admin", 3: (1, 2)}, org_id=7)
    assert ids == sorted(ids) and len(set(ids)) == 5
    with kernel.db.session() as db:
        rows = db.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        head = db.get(AuditHead, 1)
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    # Stored as it reads back from JSON, so the hash stays checkable.
    assert rows[0].detail == {"role": "admin", "3": [1, 2]}
    assert head is not None and head.last_id == ids[-1]
    result = kernel.audit.verify()
    assert result.ok and result.rows == 5, result
    out = cli(kernel, "audit", "verify")
    assert out.exit_code == 0 and "audit log intact: 5 rows" in out.output


def test_overlong_values_are_cut_to_fit_and_still_verify(kernel: Kernel) -> None:
    kernel.audit.record(
        action="a" * 500,
        outcome="success",
        actor_type="user",
        actor_id="9" * 200,
        actor_label="x" * 1000,
        target_type="t" * 80,
        target_id="i" * 300,
        ip="1" * 100,
    )
    assert kernel.audit.verify().ok
    with kernel.db.session() as db:
        row = db.scalars(select(AuditRecord)).one()
    assert len(row.action) == 100 and len(row.actor_label) == 300


def test_database_refuses_update_and_delete(kernel: Kernel) -> None:
    _append(kernel, 2)
    for statement in ("UPDATE audit_log SET outcome = 'denied'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), kernel.db.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    if not kernel.db.is_sqlite:
        with pytest.raises(DatabaseError, match="append-only"), kernel.db.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE audit_log")
    assert kernel.audit.verify().ok
    with kernel.db.session() as db:
        assert db.scalar(text("SELECT count(*) FROM audit_log")) == 2


def _expect_tampered(kernel: Kernel, first_bad_id: int, words: str) -> None:
    result = kernel.audit.verify()
    assert not result.ok, result
    assert result.first_bad_id == first_bad_id, result
    assert words in result.problem, result
    out = cli(kernel, "audit", "verify")
    assert out.exit_code == 1, out.output
    assert f"first bad row id: {first_bad_id}" in out.output
    assert words in out.output


def test_edited_field_is_detected(kernel: Kernel) -> None:
    ids = _append(kernel, 5, outcome="denied")
    tamper(kernel, "UPDATE audit_log SET outcome = 'success' WHERE id = :id", id=ids[2])
    _expect_tampered(kernel, ids[2], "was modified")


def test_edited_detail_is_detected(kernel: Kernel) -> None:
    ids = _append(kernel, 3, detail={"role": "viewer"})
    tamper(
        kernel, "UPDATE audit_log SET detail = :d WHERE id = :id", d='{"role": "owner"}', id=ids[0]
    )
    _expect_tampered(kernel, ids[0], "was modified")


def test_deleted_middle_row_is_detected(kernel: Kernel) -> None:
    ids = _append(kernel, 5)
    tamper(kernel, "DELETE FROM audit_log WHERE id = :id", id=ids[2])
    _expect_tampered(kernel, ids[3], "does not link")


def test_deleted_newest_rows_are_detected(kernel: Kernel) -> None:
    ids = _append(kernel, 5)
    tamper(kernel, "DELETE FROM audit_log WHERE id >= :id", id=ids[3])
    _expect_tampered(kernel, ids[2], "newest rows were deleted")


def test_edited_head_is_detected(kernel: Kernel) -> None:
    ids = _append(kernel, 3)
    tamper(kernel, "UPDATE audit_head SET last_hash = :h", h="a" * 64)
    _expect_tampered(kernel, ids[2], "does not seal")


def test_deleted_head_is_detected(kernel: Kernel) -> None:
    ids = _append(kernel, 3)
    tamper(kernel, "DELETE FROM audit_head")
    _expect_tampered(kernel, ids[2], "head is missing")


def test_deleting_newest_rows_and_rewinding_the_head_is_detected(kernel: Kernel) -> None:
    """The forger points the head at the new last row, copying its hash: the head's seal
    needs the installation key, so this is still caught."""
    ids = _append(kernel, 5)
    with kernel.db.session() as db:
        kept = db.get(AuditRecord, ids[2])
        assert kept is not None
        kept_hash = kept.hash
    tamper(
        kernel,
        "DELETE FROM audit_log WHERE id > :id",
        "UPDATE audit_head SET last_id = :id, last_hash = :h",
        id=ids[2],
        h=kept_hash,
    )
    _expect_tampered(kernel, ids[2], "does not seal")


def test_a_break_stays_visible_after_later_appends(kernel: Kernel) -> None:
    """Appending after the newest rows were deleted (or the head dropped) must not
    reseal the chain over the gap."""
    ids = _append(kernel, 4)
    tamper(kernel, "DELETE FROM audit_log WHERE id >= :id", id=ids[2])
    new = _append(kernel, 2)
    assert new[0] > ids[-1]  # ids of deleted rows are not reused
    result = kernel.audit.verify()
    assert not result.ok and result.first_bad_id == new[0], result

    tamper(kernel, "DELETE FROM audit_head")
    later = _append(kernel, 1)
    result = kernel.audit.verify()
    assert not result.ok and result.first_bad_id == new[0], result
    # The row after the lost head is unlinked too, should the first break be repaired.
    with kernel.db.session() as db:
        row = db.get(AuditRecord, later[0])
        assert row is not None and row.prev_hash == "f" * 64


def test_a_forged_row_without_the_key_is_detected(kernel: Kernel) -> None:
    """An appended row whose hash was computed with another key does not verify."""
    ids = _append(kernel, 2)
    from cryptography.fernet import Fernet

    from gakwaya.security.crypto import SecretBox

    forger = AuditLog(kernel.db, SecretBox(Fernet.generate_key().decode()))
    forged = forger.record(action="members_update", outcome="success", actor_type="user")
    result = kernel.audit.verify()
    assert not result.ok
    assert result.first_bad_id == forged and forged > ids[-1]


def test_concurrent_appends_keep_the_chain_valid(kernel: Kernel) -> None:
    """Writers in several threads and through two engines (as two processes would),
    with verify running meanwhile: every row lands in the chain and verify never
    reports a problem that is not there."""
    other = Kernel.create(kernel.settings)
    threads_per_kernel, per_thread = 4, 15
    errors: list[BaseException] = []
    bad_verifies: list[object] = []
    done = threading.Event()

    def write(k: Kernel, n: int) -> None:
        try:
            for i in range(per_thread):
                k.audit.record(
                    action="things_update",
                    outcome="success",
                    actor_type="user",
                    actor_id=str(n),
                    target_id=str(i),
                )
        except BaseException as exc:
            errors.append(exc)

    def check() -> None:
        while not done.is_set():
            result = kernel.audit.verify()
            if not result.ok:
                bad_verifies.append(result)

    writers = [
        threading.Thread(target=write, args=(k, n))
        for n, k in enumerate([kernel, other] * threads_per_kernel)
    ]
    checker = threading.Thread(target=check)
    checker.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    done.set()
    checker.join(60)
    other.close()
    assert not errors, errors
    assert not bad_verifies, bad_verifies
    total = 2 * threads_per_kernel * per_thread
    result = kernel.audit.verify()
    assert result.ok and result.rows == total, result
    with kernel.db.session() as db:
        ids = db.scalars(select(AuditRecord.id)).all()
    assert len(set(ids)) == total
