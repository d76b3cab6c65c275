"""The migrations and the models agree, on SQLite and PostgreSQL.

- At head, Alembic's autogenerate comparison finds nothing to change: a model
  edited without regenerating the migration fails here.
- An empty database upgrades to head (and back down to nothing and up again).
- ``gakwaya migrate`` run twice leaves the same database.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from pprint import pformat

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect

import gakwaya.db.models  # noqa: F401  (registers every table)
from gakwaya.db.base import Base
from gakwaya.db.migrate import alembic_config, upgrade
from gakwaya.settings import Settings

_counter = itertools.count(1)


def engine_for(url: str) -> Engine:
    return create_engine(Settings(database_url=url).effective_database_url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = engine_for(database_url)
    yield e
    e.dispose()


@pytest.fixture
def empty_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    """A database with no table at all, of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin: str = request.getfixturevalue("postgres_admin_url")
    name = f"empty{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def heads(engine: Engine) -> tuple[set[str], set[str]]:
    """(revisions the database is at, newest revisions of the scripts)."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(script.get_heads())


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def downgrade_to_base(engine: Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")


def test_one_line_of_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"core migrations have branched: {script.get_heads()}"
    # Core is the branch labelled "core" (plugins have branches of their own).
    assert [r.revision for r in script.get_revisions("core@head")] == script.get_heads()


def test_models_match_migrations_at_head(engine: Engine) -> None:
    current, newest = heads(engine)
    assert current == newest
    diff = differences(engine)
    assert diff == [], (
        "the models and the migrations differ; regenerate the migration "
        "(docs/dev/conventions.md):\n" + pformat(diff)
    )


def test_upgrade_from_empty(empty_database_url: str) -> None:
    engine = engine_for(empty_database_url)
    try:
        assert tables(engine) == set()
        upgrade(engine)
        current, newest = heads(engine)
        assert current == newest
        assert set(Base.metadata.tables) <= tables(engine)
        assert differences(engine) == []

        downgrade_to_base(engine)
        assert tables(engine) <= {"alembic_version"}
        upgrade(engine)
        assert differences(engine) == []
    finally:
        engine.dispose()


def _migrate(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env["GAKWAYA_DATA_DIR"] = str(tmp_path / "data")
    env["GAKWAYA_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "gakwaya", "migrate"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_command_is_idempotent(empty_database_url: str, tmp_path: Path) -> None:
    first = _migrate(tmp_path, empty_database_url)
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout
    engine = engine_for(empty_database_url)
    try:
        after_first = tables(engine)
        current, newest = heads(engine)
        assert current == newest

        second = _migrate(tmp_path, empty_database_url)
        assert second.returncode == 0, second.stderr
        assert "up to date" in second.stdout
        assert tables(engine) == after_first
        assert heads(engine) == (current, newest)
        assert differences(engine) == []
    finally:
        engine.dispose()
