"""Engine and sessions. Sync SQLAlchemy: the API runs handlers in a thread pool, and
the same code serves the CLI and ``gakwaya worker``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from gakwaya.db.base import Base, utcnow

__all__ = ["Base", "Database", "utcnow"]


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Let SQLAlchemy, not pysqlite, issue BEGIN so that BEGIN IMMEDIATE works.
            event.listen(self.engine, "begin", _sqlite_begin)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Same pool; on SQLite its transactions start with BEGIN IMMEDIATE.
        self._write_sessionmaker = sessionmaker(
            self.engine.execution_options(gakwaya_immediate=True), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self, *, write: bool = False) -> Session:
        """A session; ``write=True`` takes SQLite's write lock at BEGIN (no upgrade
        deadlock between two writers). PostgreSQL ignores it."""
        return self._write_sessionmaker() if write else self.sessionmaker()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.session(write=write) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: two writers never deadlock on upgrade.
    immediate = conn.get_execution_options().get("gakwaya_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
