"""Tampering with the audit table as someone with the database owner's rights would."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import text

from gakwaya.cli import main
from gakwaya.kernel import Kernel


def tamper(kernel: Kernel, *statements: str, **params: Any) -> None:
    """Switch off the append-only triggers, then run ``statements`` (with ``:name``
    parameters from ``params``)."""
    with kernel.db.engine.begin() as conn:
        if kernel.db.is_sqlite:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(text(statement), params)


def cli(kernel: Kernel, *args: str) -> Result:
    """Run ``gakwaya <args>`` against the kernel's database and key."""
    s = kernel.settings
    env: dict[str, Any] = {
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_SECRET_KEY": s.secret_key,
        "GAKWAYA_REDIS_URL": "",
        "GAKWAYA_CONFIG": None,
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
