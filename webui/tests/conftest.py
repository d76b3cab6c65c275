"""The dashboard's tests run on the repository's fixtures: a real kernel on SQLite and
on PostgreSQL (``database_url``), the ``world`` of two organizations with a user of
every role, and a Litestar TestClient with the lifespan running."""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root, so ``tests`` (the shared fixtures) is importable from here.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.conftest import (  # noqa: E402, F401  (fixtures, registered by name)
    _pg_template,
    _sqlite_template,
    app,
    client,
    database_url,
    fresh_client,
    kernel,
    postgres_admin_url,
    redis_url,
    settings,
    settings_overrides,
    world,
)
