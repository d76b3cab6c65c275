"""Fixtures shared by the whole suite.

- ``database_url``: every test that touches the database runs twice, on SQLite and
  on a real PostgreSQL (``GAKWAYA_TEST_DATABASES=sqlite`` narrows it while working).
- ``kernel`` / ``app`` / ``client``: a panel on a fresh, migrated database, in-process
  jobs; ``redis_url`` gives a real Redis for the tests that need one.
- ``world``: two organizations with a user of every role, ready-made sessions and
  API keys, for permission and cross-organization tests.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import create_engine

from gakwaya.apikeys import keys as apikey_format
from gakwaya.app import create_app
from gakwaya.db.base import utcnow
from gakwaya.db.migrate import upgrade
from gakwaya.db.models import ApiKey, Membership, Organization, User, UserSession
from gakwaya.kernel import Kernel
from gakwaya.plugins.host import PluginHost
from gakwaya.security.passwords import hash_password
from gakwaya.security.tokens import digest, new_token
from gakwaya.settings import Settings
from tests import services

PASSWORD = "correct horse battery staple 7"
_counter = itertools.count(1)
_HASH_CACHE: dict[str, str] = {}


def _databases() -> list[str]:
    wanted = os.environ.get("GAKWAYA_TEST_DATABASES", "sqlite,postgresql")
    return [d.strip() for d in wanted.split(",") if d.strip()]


# Servers ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with services.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with services.redis_server() as url:
        yield url


def _installed_migration_dirs() -> list[tuple[str, str]]:
    """The branches of the plugins every test kernel loads (built-in and installed),
    so the templates hold their tables too."""
    host = PluginHost()
    host.load()
    return host.migration_dirs()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine, _installed_migration_dirs())
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_template(request: pytest.FixtureRequest) -> str:
    admin = request.getfixturevalue("postgres_admin_url")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE gakwaya_template")
    engine = create_engine(
        admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        + "/gakwaya_template"
    )
    upgrade(engine, _installed_migration_dirs())
    engine.dispose()
    return admin


@pytest.fixture(params=_databases())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "gakwaya.db"
        shutil.copy(template, target)
        yield f"sqlite:///{target}"
        return
    admin = request.getfixturevalue("_pg_template")
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE gakwaya_template')
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The panel ------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its kernel."""
    return {}


def worker_port_range() -> str:
    """This test process's slice of ``app_port_range``: parallel workers (pytest-xdist
    ``gwN``) give apps host ports the port proxy binds, so two must never get the same."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = 20000 + (int(worker) if worker.isdigit() else 0) * 1000
    return f"{low}-{low + 999}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "app_port_range": worker_port_range(),
        "data_dir": str(tmp_path / "data"),
        "database_url": database_url,
        "secret_key": Fernet.generate_key().decode(),
        "password_min_length": 12,
        "job_heartbeat_interval": 1,
        "job_heartbeat_timeout": 5,
        "reaper_interval": 1,
    }
    values.update(settings_overrides)
    return Settings(**values)


@pytest.fixture
def kernel(settings: Settings) -> Iterator[Kernel]:
    k = Kernel.create(settings)
    yield k
    k.close()


@pytest.fixture
def app(kernel: Kernel) -> Litestar:
    return create_app(kernel)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    """A client with the app's lifespan running (job runner, event relay)."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def fresh_client(app: Litestar, client: TestClient[Litestar]) -> Any:
    """Make more clients with their own cookie jars, sharing the running app."""

    def make() -> TestClient[Litestar]:
        return TestClient(app)

    return make


# People, organizations, credentials --------------------------------------------------


def make_user(
    kernel: Kernel, email: str | None = None, *, password: str = PASSWORD, superuser: bool = False
) -> User:
    email = email or f"user{next(_counter)}@example.com"
    if password not in _HASH_CACHE:
        _HASH_CACHE[password] = hash_password(password)
    with kernel.db.transaction() as db:
        user = User(
            email=email,
            name=email.split("@")[0],
            password_hash=_HASH_CACHE[password],
            is_superuser=superuser,
        )
        db.add(user)
    return user


def make_org(
    kernel: Kernel, slug: str | None = None, members: dict[User, str] | None = None
) -> Organization:
    slug = slug or f"org{next(_counter)}"
    with kernel.db.transaction() as db:
        org = Organization(slug=slug, name=slug.title())
        db.add(org)
        db.flush()
        for user, role in (members or {}).items():
            db.add(Membership(org_id=org.id, user_id=user.id, role=role))
    return org


def make_session(kernel: Kernel, user: User) -> dict[str, str]:
    """Headers that act as ``user`` signed in through a browser session."""
    token, csrf = new_token(), new_token()
    with kernel.db.transaction() as db:
        db.add(
            UserSession(
                token_hash=digest(token),
                user_id=user.id,
                csrf_token=csrf,
                expires_at=utcnow() + dt.timedelta(hours=1),
            )
        )
    return {"Cookie": f"gakwaya_session={token}; gakwaya_csrf={csrf}", "X-CSRF-Token": csrf}


def make_key(
    kernel: Kernel,
    user: User,
    org: Organization,
    scopes: list[str],
    *,
    expires_at: dt.datetime | None = None,
) -> dict[str, str]:
    """Headers that act as ``user`` through an API key bound to ``org``."""
    key = apikey_format.generate()
    with kernel.db.transaction() as db:
        db.add(
            ApiKey(
                org_id=org.id,
                user_id=user.id,
                name="test",
                prefix=apikey_format.display_prefix(key),
                key_hash=apikey_format.key_digest(key),
                scopes=scopes,
                expires_at=expires_at,
            )
        )
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Party:
    """One organization with a user of each role, their sessions and keys."""

    org: Organization
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class World:
    a: Party
    b: Party


@pytest.fixture
def world(kernel: Kernel) -> World:
    parties = []
    for name in ("acme", "globex"):
        users = {
            role: make_user(kernel, f"{role}@{name}.example.com")
            for role in ("owner", "admin", "developer", "viewer")
        }
        org = make_org(kernel, name, {u: r for r, u in users.items()})
        party = Party(org=org, users=users)
        party.sessions = {r: make_session(kernel, u) for r, u in users.items()}
        party.keys = {
            s: make_key(kernel, users["owner"], org, [s])
            for s in ("read", "deploy", "write", "admin")
        }
        parties.append(party)
    return World(a=parties[0], b=parties[1])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``edge_rule`` tests run on the first database only: each sends one bad value that
    the API refuses at its edge, before any storage, so what they prove does not depend
    on the database (the same handlers' storage paths run on both elsewhere). Roughly
    200 such cases would otherwise be repeated on PostgreSQL."""
    databases = _databases()
    if len(databases) < 2:
        return
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            item.get_closest_marker("edge_rule") is not None
            and params.get("database_url", databases[0]) != databases[0]
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
