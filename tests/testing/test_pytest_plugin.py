"""The pytest plugin for plugin authors (``gakwaya.testing.pytest_plugin``), as an
author meets it: a plugin project of its own, its tests run by pytest in a child
process (pytester), the fixtures coming from the ``pytest11`` entry point.

The plugin under test is a source tree that is never installed: ``pythonpath`` and
``gakwaya_plugins`` (or ``--gakwaya-plugin``) bring it in, its manifest is the
packaged ``gakwaya-plugin.toml`` beside it, and its own Alembic branch must be
migrated by ``gakwaya_kernel``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PLUGIN = '''\
"""A plugin under test: a permission, a route, a job and a table."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import get
from litestar.di import NamedDependency

from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import OrgContext, Panel
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.permissions import Permission, Role, Scope


@get(
    "/api/v1/orgs/{org:str}/demo",
    operation_id="demo_show",
    opt={"permission": "demo.read"},
    sync_to_thread=True,
)
def demo_show(
    panel: NamedDependency[Panel], current_org: NamedDependency[OrgContext]
) -> dict[str, Any]:
    settings = dict(panel.settings("demo", org_id=current_org.id))
    return {"org": current_org.slug, "role": str(current_org.role), "settings": settings}


def double(ctx: Any, n: int) -> int:
    return 2 * n


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return [
        Permission(
            name="demo.read", description="Read", min_role=Role.DEVELOPER, scope=Scope.READ
        )
    ]


@hookimpl
def register_routes() -> Sequence[Any]:
    return [demo_show]


@hookimpl
def register_jobs() -> Sequence[JobType]:
    return [JobType(name="demo.double", func=double)]


@hookimpl
def register_migrations() -> str:
    return str(Path(__file__).parent / "migrations")
'''

MIGRATION = '''\
"""demo_things"""

import sqlalchemy as sa
from alembic import op

revision = "demo_0001"
down_revision = None
branch_labels = ("demo",)
depends_on = None


def upgrade() -> None:
    op.create_table("demo_things", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("demo_things")
'''

MANIFEST = """\
name = "demo"
version = "0.1.0"
core_api = "{core_api}"
permissions = ["demo.read"]

[[settings]]
name = "color"
default = "blue"
"""

#: The whole tour, on whichever database ``gakwaya_database_url`` gives.
PANEL_TEST = """\
import time

from sqlalchemy import inspect

URL = "/api/v1/orgs/{}/demo"


def test_panel(
    gakwaya_kernel, gakwaya_client, gakwaya_org, gakwaya_make_org, gakwaya_superuser
):
    status = gakwaya_kernel.plugins.statuses["demo"]
    assert (status.status, status.source, status.version) == ("active", "module", "0.1.0")
    # The plugin's own Alembic branch was migrated with the core tables.
    tables = inspect(gakwaya_kernel.db.engine).get_table_names()
    assert {"demo_things", "users", "organizations"} <= set(tables)

    acme = URL.format(gakwaya_org.slug)
    r = gakwaya_client.get(acme, headers=gakwaya_org.keys["read"])
    assert r.status_code == 200, r.text
    assert r.json() == {"org": "acme", "role": "owner", "settings": {"color": "blue"}}
    assert (gakwaya_org.slug, gakwaya_org.name) == ("acme", "Acme")

    for role, expected in {"owner": 200, "admin": 200, "developer": 200, "viewer": 403}.items():
        r = gakwaya_client.get(acme, headers=gakwaya_org.sessions[role])
        assert r.status_code == expected, (role, r.text)
        assert gakwaya_org.users[role].email == f"{role}@acme.example.com"
    for scope in ("read", "deploy", "write", "admin"):
        assert gakwaya_client.get(acme, headers=gakwaya_org.keys[scope]).status_code == 200

    globex = gakwaya_make_org("globex")
    for headers in (gakwaya_org.keys["admin"], gakwaya_org.sessions["owner"]):
        assert gakwaya_client.get(URL.format("globex"), headers=headers).status_code == 404
    assert gakwaya_client.get(URL.format("globex"), headers=globex.keys["read"]).status_code == 200
    assert gakwaya_client.get(acme, headers=globex.sessions["owner"]).status_code == 404

    # Sessions carry their CSRF token, so writes pass; a read key cannot write.
    keys_url = "/api/v1/orgs/acme/api-keys"
    body = {"name": "ci", "scopes": ["read"]}
    r = gakwaya_client.post(keys_url, json=body, headers=gakwaya_org.sessions["owner"])
    assert r.status_code == 201, r.text
    r = gakwaya_client.post(keys_url, json=body, headers=gakwaya_org.keys["read"])
    assert r.status_code == 403, r.text

    r = gakwaya_client.get("/api/v1/plugins", headers=gakwaya_superuser.session)
    assert r.status_code == 200, r.text
    assert "demo" in {p["name"] for p in r.json()["items"]}
    assert gakwaya_superuser.superuser
    r = gakwaya_client.get("/api/v1/plugins", headers=gakwaya_org.sessions["owner"])
    assert r.status_code == 403

    # Jobs run in this process: the client's lifespan started the runner.
    job = gakwaya_kernel.jobs.enqueue("demo.double", org_id=gakwaya_org.id, arguments={"n": 21})
    deadline = time.monotonic() + 60
    while gakwaya_kernel.jobs.get(job.id).state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    assert gakwaya_kernel.jobs.get(job.id).result == 42
"""


def _plugin_project(
    root: Path,
    *,
    core_api: str = ">=0.1,<0.2",
    ini_plugins: bool = True,
    extra_ini: str = "",
    migration: str = MIGRATION,
) -> None:
    """A plugin project as ``gakwaya plugin new`` lays it out, with a migration branch."""
    package = root / "src" / "gakwaya_demo"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(PLUGIN)
    (package / "gakwaya-plugin.toml").write_text(MANIFEST.format(core_api=core_api))
    (package / "migrations" / "0001_demo_things.py").write_text(migration)
    plugins = 'gakwaya_plugins = ["gakwaya_demo.plugin"]\n' if ini_plugins else ""
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\npythonpath = ["src"]\n' + plugins + extra_ini
    )


def _write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text))


def test_panel_with_the_plugin_under_test(pytester: pytest.Pytester, database_url: str) -> None:
    """Every fixture at once, on SQLite and PostgreSQL (``gakwaya_database_url``
    overridden the way its docstring tells an author to)."""
    _plugin_project(pytester.path)
    _write(
        pytester.path,
        "conftest.py",
        f"""\
        import pytest


        @pytest.fixture
        def gakwaya_database_url():
            return {database_url!r}
        """,
    )
    _write(pytester.path, "test_panel.py", PANEL_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gakwaya plugins under test: gakwaya_demo.plugin"])


def test_defaults_and_overrides(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh SQLite panel per test, environment ignored, overrides applied."""
    _plugin_project(pytester.path)
    (pytester.path / "src" / "extra_plugin.py").write_text(
        'MANIFEST = {"name": "extra", "version": "1.0", "core_api": ">=0.1"}\n'
    )
    # An operator's environment must not leak into the tests' panel.
    monkeypatch.setenv("GAKWAYA_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("GAKWAYA_DISABLED_PLUGINS", "demo")
    _write(
        pytester.path,
        "test_defaults.py",
        """\
        from pathlib import Path


        def test_settings(gakwaya_settings, gakwaya_plugin_modules, tmp_path):
            assert gakwaya_plugin_modules == ["gakwaya_demo.plugin"]
            assert gakwaya_settings.plugin_modules == ["gakwaya_demo.plugin"]
            assert gakwaya_settings.redis_url == ""
            assert gakwaya_settings.disabled_plugins == []
            assert gakwaya_settings.data_path == (tmp_path / "gakwaya-data").resolve()
            assert gakwaya_settings.database_url == f"sqlite:///{tmp_path / 'gakwaya.db'}"
            assert gakwaya_settings.secret_key


        def test_each_test_has_its_own_panel(gakwaya_kernel, gakwaya_org):
            assert gakwaya_kernel.plugins.statuses["demo"].status == "active"
            assert gakwaya_org.slug == "acme"


        def test_and_another(gakwaya_org):
            # The same slug again: a new, empty database.
            assert gakwaya_org.slug == "acme"
        """,
    )
    _write(
        pytester.path,
        "test_overrides.py",
        """\
        import pytest


        @pytest.fixture
        def gakwaya_settings_overrides():
            return {"plugin_modules": ["extra_plugin"], "password_min_length": 20}


        def test_overrides(gakwaya_settings, gakwaya_kernel):
            assert gakwaya_settings.plugin_modules == ["gakwaya_demo.plugin", "extra_plugin"]
            assert gakwaya_settings.password_min_length == 20
            assert gakwaya_kernel.plugins.statuses["extra"].status == "active"
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_command_line_option_adds_a_plugin(pytester: pytest.Pytester) -> None:
    _plugin_project(pytester.path, ini_plugins=False)
    _write(
        pytester.path,
        "test_loaded.py",
        """\
        def test_loaded(gakwaya_kernel, request):
            loaded = bool(request.config.getoption("gakwaya_plugin"))
            assert ("demo" in gakwaya_kernel.plugins.statuses) is loaded
        """,
    )
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    without.assert_outcomes(passed=1)
    assert "gakwaya plugins under test" not in without.stdout.str()
    with_option = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gakwaya-plugin", "gakwaya_demo.plugin"
    )
    with_option.assert_outcomes(passed=1)
    with_option.stdout.fnmatch_lines(["gakwaya plugins under test: gakwaya_demo.plugin"])


def test_a_refused_plugin_under_test_fails_with_the_reason(pytester: pytest.Pytester) -> None:
    _plugin_project(pytester.path, core_api=">=9")
    _write(
        pytester.path,
        "test_refused.py",
        """\
        def test_uses_the_panel(gakwaya_client):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*PluginUnderTestFailed: plugin under test refused: demo: core_api '>=9'*"]
    )


def test_a_failing_migration_fails_with_the_reason(pytester: pytest.Pytester) -> None:
    broken = MIGRATION.replace(
        'op.create_table("demo_things"', 'raise RuntimeError("boom")\n    op.create_table("x"'
    )
    _plugin_project(pytester.path, migration=broken)
    _write(
        pytester.path,
        "test_migrations.py",
        """\
        def test_uses_the_database(gakwaya_kernel):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*PluginUnderTestFailed: plugin 'demo': migrations refused: *RuntimeError*boom*"]
    )


def test_an_installed_plugin_named_again_loads_once(pytester: pytest.Pytester) -> None:
    """Installed (an entry point, as after ``pip install -e .``) and listed in
    ``gakwaya_plugins``: the entry point loads it, the module is not loaded twice."""
    _plugin_project(pytester.path)
    dist_info = pytester.path / "src" / "gakwaya_demo-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gakwaya-demo\nVersion: 0.1.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[gakwaya.plugins]\ndemo = gakwaya_demo.plugin\n")
    _write(
        pytester.path,
        "test_once.py",
        """\
        def test_once(gakwaya_kernel, gakwaya_plugin_modules):
            assert gakwaya_plugin_modules == []
            status = gakwaya_kernel.plugins.statuses["demo"]
            assert (status.status, status.source) == ("active", "entry_point")
            refused = [s for s in gakwaya_kernel.plugins.statuses.values() if s.status == "refused"]
            assert refused == []
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_suite_without_the_fixtures_does_not_load_the_kernel(
    pytester: pytest.Pytester,
) -> None:
    """The plugin is loaded into every pytest run of the environment (ours too): by
    itself it imports nothing heavy and adds no report line."""
    _write(
        pytester.path,
        "test_plain.py",
        """\
        import sys


        def test_plain():
            heavy = {"gakwaya.kernel", "gakwaya.app", "gakwaya.db", "litestar", "sqlalchemy"}
            assert not heavy & set(sys.modules)
            assert "gakwaya.testing.pytest_plugin" in sys.modules
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "gakwaya plugins under test" not in result.stdout.str()
