"""Alembic environment for the core tables (the branch labelled ``core``), for
Alembic's own commands: autogenerate (scripts/makemigration.py), downgrades in tests.
The URL comes from ``sqlalchemy.url`` or ``config.attributes["connection"]``.

``gakwaya migrate`` does not go through this file: :mod:`gakwaya.db.migrate` runs
core's branch and every plugin's, each with its own version table. Plugins write
their revisions with a set-up of their own (docs/plugins/migrations.md), so only
core's models are the target here."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import gakwaya.db.models  # noqa: F401  (registers every table)
from gakwaya.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
