"""Plugin tables: each plugin's own Alembic branch, migrated after core in load order.

The plugins are the real packages of ``tests/plugins/migration_plugins/``, loaded by
a :class:`Kernel` (``extra_plugins``) or by ``gakwaya`` itself (``plugin_modules``),
on SQLite and PostgreSQL. ``database_url`` starts with core's tables at head.
"""

from __future__ import annotations

import configparser
import importlib.util
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import Engine, inspect, text

from gakwaya.db import Database
from gakwaya.db.migrate import (
    BranchState,
    alembic_config,
    pending,
    status,
    stray_version_tables,
    upgrade,
)
from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl
from tests.plugins.migration_plugins import mig_badlabel, mig_base, mig_child

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).resolve().parent / "migration_plugins"
MODULES = "tests.plugins.migration_plugins"
_copies = itertools.count(1)


@pytest.fixture
def make_kernel(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Kernels on one database (one at a time is what a restart is)."""
    kernels: list[Kernel] = []
    key = Fernet.generate_key().decode()

    def make(*extra: tuple[str, object], **overrides: Any) -> Kernel:
        while kernels:
            kernels.pop().close()
        values: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "database_url": database_url,
            "secret_key": key,
        }
        values.update(overrides)
        kernel = Kernel.create(Settings(**values), extra_plugins=list(extra))
        kernels.append(kernel)
        return kernel

    yield make
    for kernel in kernels:
        kernel.close()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The kernel's own engine set-up (on SQLite: DDL inside transactions)."""
    db = Database(Settings(database_url=database_url).effective_database_url)
    yield db.engine
    db.dispose()


BASE = ("mig-base", mig_base)
CHILD = ("mig-child", mig_child)
BADLABEL = ("mig-badlabel", mig_badlabel)


def by_name(states: list[BranchState]) -> dict[str, BranchState]:
    return {s.name: s for s in states}


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def versions(engine: Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": table})
        return set(context.get_current_heads())


def core_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def copy_plugin(tmp_path: Path, package: str) -> types.ModuleType:
    """A copy of a plugin package under a name of its own, so a test can add
    revisions to its migrations directory."""
    target = tmp_path / f"{package}_copy{next(_copies)}"
    shutil.copytree(PLUGINS / package, target, ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.spec_from_file_location(
        target.name, target / "__init__.py", submodule_search_locations=[str(target)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_core_then_each_plugin_after_what_it_requires(make_kernel: Any, engine: Engine) -> None:
    # mig-child is discovered first; its requirement puts mig-base before it.
    kernel = make_kernel(CHILD, BASE)
    assert [name for name, _ in kernel.plugins.migration_dirs()] == ["mig-base", "mig-child"]

    states = kernel.migrate()

    assert [s.name for s in states] == ["core", "mig-base", "mig-child"]
    got = by_name(states)
    assert got["core"].applied == [] and not got["core"].error  # the template is at head
    assert (got["mig-base"].applied, got["mig-base"].error) == (["mb0001"], "")
    assert (got["mig-child"].applied, got["mig-child"].error) == (["mc0001"], "")
    assert {"mig_base_things", "mig_child_items"} <= tables(engine)
    # mig-child's migration copied the row mig-base's migration wrote: it ran after it.
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT thing_id, note FROM mig_child_items")).all()
    assert [tuple(r) for r in rows] == [(1, "copied from seed")]
    fks = inspect(engine).get_foreign_keys("mig_child_items")
    assert [fk["referred_table"] for fk in fks] == ["mig_base_things"]
    # Each branch has its own version table; core's is what plain Alembic sees.
    assert versions(engine, "alembic_version") == core_heads()
    assert versions(engine, "alembic_version_mig_base") == {"mb0001"}
    assert versions(engine, "alembic_version_mig_child") == {"mc0001"}
    assert not pending(engine, kernel.plugins.migration_dirs())
    assert all(s.status == "active" for s in kernel.plugins.status_list())


def test_out_of_order_the_dependent_branch_is_refused(engine: Engine) -> None:
    """Given in the wrong order (the kernel never does this), mig-child's dependency
    is not known yet: it is refused rather than run before mig-base."""
    dirs = [
        ("mig-child", str(PLUGINS / "mig_child" / "migrations")),
        ("mig-base", str(PLUGINS / "mig_base" / "migrations")),
    ]
    got = by_name(upgrade(engine, dirs))
    assert got["mig-child"].error.startswith("plugin 'mig-child': migrations refused: ")
    assert "'mb0001'" in got["mig-child"].error
    assert got["mig-base"].applied == ["mb0001"]
    assert "mig_child_items" not in tables(engine)


def test_running_again_changes_nothing(make_kernel: Any, engine: Engine) -> None:
    kernel = make_kernel(BASE, CHILD)
    kernel.migrate()
    before = (tables(engine), versions(engine, "alembic_version_mig_child"))

    again = kernel.migrate()

    assert [(s.name, s.applied, s.error) for s in again] == [
        ("core", [], ""),
        ("mig-base", [], ""),
        ("mig-child", [], ""),
    ]
    assert (tables(engine), versions(engine, "alembic_version_mig_child")) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM mig_child_items")).scalar_one() == 1


def test_a_new_revision_is_applied_on_the_next_migrate(
    make_kernel: Any, engine: Engine, tmp_path: Path
) -> None:
    base = copy_plugin(tmp_path, "mig_base")
    kernel = make_kernel(("mig-base", base))
    assert by_name(kernel.migrate())["mig-base"].applied == ["mb0001"]
    dirs = kernel.plugins.migration_dirs()
    assert not pending(engine, dirs)

    # The plugin's next release ships a second revision.
    shutil.copy(PLUGINS / "mig_base_next" / "mb0002_extras.py", Path(dirs[-1][1]))
    assert pending(engine, dirs)
    assert by_name(status(engine, dirs))["mig-base"].current == ("mb0001",)

    kernel = make_kernel(("mig-base", base))
    assert by_name(kernel.migrate())["mig-base"].applied == ["mb0002"]
    assert "mig_base_extras" in tables(engine)
    assert versions(engine, "alembic_version_mig_base") == {"mb0002"}
    assert not pending(engine, dirs)

    # Going back to the older release: its files do not know the database's revision.
    (Path(dirs[-1][1]) / "mb0002_extras.py").unlink()
    kernel = make_kernel(("mig-base", base))
    got = by_name(kernel.migrate())
    assert "is at ['mb0002'], which its migrations do not contain" in got["mig-base"].error
    assert not got["core"].error
    assert kernel.plugins.statuses["mig-base"].status == "degraded"


def test_a_disabled_plugin_is_not_migrated(make_kernel: Any, engine: Engine) -> None:
    kernel = make_kernel(BASE, CHILD, disabled_plugins=["mig-child"])
    states = kernel.migrate()
    assert [s.name for s in states] == ["core", "mig-base"]
    assert "mig_base_things" in tables(engine)
    assert not {"mig_child_items", "alembic_version_mig_child"} & tables(engine)
    assert not pending(engine, kernel.plugins.migration_dirs())

    # Enabled again: migrated at the next start.
    kernel = make_kernel(BASE, CHILD)
    assert by_name(kernel.migrate())["mig-child"].applied == ["mc0001"]
    assert "mig_child_items" in tables(engine)


def test_a_wrong_branch_label_is_refused_and_the_others_migrate(
    make_kernel: Any, engine: Engine
) -> None:
    kernel = make_kernel(BASE, BADLABEL, CHILD)
    got = by_name(kernel.migrate())

    error = got["mig-badlabel"].error
    assert error.startswith("plugin 'mig-badlabel': migrations refused: ")
    assert "revision 'bl0001' is on branch label(s) ['badlabel'], not 'mig-badlabel'" in error
    assert "branch_labels = ('mig-badlabel',)" in error  # the rule
    assert got["mig-badlabel"].applied == []
    assert "mig_badlabel_rows" not in tables(engine)
    assert got["mig-base"].applied == ["mb0001"]
    assert got["mig-child"].applied == ["mc0001"]
    status_ = kernel.plugins.statuses["mig-badlabel"]
    assert (status_.status, status_.reason) == ("degraded", error)
    # Migrating again would not change a refused branch: nothing is pending.
    assert not pending(engine, kernel.plugins.migration_dirs())
    assert by_name(status(engine, kernel.plugins.migration_dirs()))["mig-badlabel"].error == error


def test_a_branch_whose_plugin_is_gone_breaks_nothing(make_kernel: Any, engine: Engine) -> None:
    kernel = make_kernel(BASE, CHILD)
    kernel.migrate()
    everything = tables(engine)

    # mig-child uninstalled: its version table's row names a revision no directory has.
    kernel = make_kernel(BASE)
    dirs = kernel.plugins.migration_dirs()
    assert not pending(engine, dirs)
    states = kernel.migrate()
    assert [(s.name, s.applied, s.error) for s in states] == [
        ("core", [], ""),
        ("mig-base", [], ""),
    ]
    assert stray_version_tables(engine, states) == ["alembic_version_mig_child"]
    # Its tables are kept, and core's own tooling still sees only core.
    assert tables(engine) == everything
    assert versions(engine, "alembic_version_mig_child") == {"mc0001"}
    assert versions(engine, "alembic_version") == core_heads()

    # Both gone.
    kernel = make_kernel()
    assert not pending(engine, kernel.plugins.migration_dirs())
    assert [s.name for s in kernel.migrate()] == ["core"]
    assert tables(engine) == everything


def test_a_hook_that_raises_leaves_only_its_plugin_out(make_kernel: Any, engine: Engine) -> None:
    broken = types.ModuleType("mig_raises")
    broken.MANIFEST = {"name": "mig-raises", "version": "1.0", "core_api": ">=0.1"}  # type: ignore[attr-defined]

    @hookimpl
    def register_migrations() -> str:
        raise RuntimeError("no directory today")

    broken.register_migrations = register_migrations  # type: ignore[attr-defined]
    kernel = make_kernel(BASE, ("mig-raises", broken))

    assert [name for name, _ in kernel.plugins.migration_dirs()] == ["mig-base"]
    assert by_name(kernel.migrate())["mig-base"].applied == ["mb0001"]
    status_ = kernel.plugins.statuses["mig-raises"]
    assert status_.status == "degraded"
    assert "register_migrations raised RuntimeError('no directory today')" in status_.reason


def _revision(directory: Path, rev: str, **fields: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    values = {"down_revision": None, "branch_labels": None, "depends_on": None, **fields}
    body = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    table = f"t_{rev}"
    (directory / f"{rev}_rev.py").write_text(
        f'"""test revision"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {rev!r}\n{body}\n\n\n"
        f"def upgrade():\n"
        f"    if {rev!r}.startswith('boom'):\n"
        f"        op.create_table({table!r}, sa.Column('id', sa.Integer, primary_key=True))\n"
        f"        raise RuntimeError('broken migration')\n"
        f"    op.create_table({table!r}, sa.Column('id', sa.Integer, primary_key=True))\n\n\n"
        f"def downgrade():\n    op.drop_table({table!r})\n"
    )


def test_each_rule_refuses_only_its_plugin(engine: Engine, tmp_path: Path) -> None:
    _revision(tmp_path / "down", "rd1", down_revision="0001", branch_labels=("bad-down",))
    _revision(tmp_path / "dup", "0001", branch_labels=("bad-dup",))
    _revision(tmp_path / "dep", "rp1", branch_labels=("bad-dep",), depends_on="nope")
    _revision(tmp_path / "nolabel", "rn1")
    _revision(tmp_path / "fine", "rf1", branch_labels=("fine",))
    _revision(tmp_path / "fine", "rf2", down_revision="rf1")
    _revision(tmp_path / "fine2", "rg1", branch_labels=("Fine2",))
    dirs = [
        ("bad-down", str(tmp_path / "down")),
        ("bad-dup", str(tmp_path / "dup")),
        ("bad-dep", str(tmp_path / "dep")),
        ("bad-nolabel", str(tmp_path / "nolabel")),
        ("bad-missing", str(tmp_path / "nowhere")),
        ("fine", str(tmp_path / "fine")),
        ("Fine2", str(tmp_path / "fine2")),
        ("fine2", str(tmp_path / "fine2")),
    ]
    got = by_name(upgrade(engine, dirs))

    expected = {
        "bad-down": "revision 'rd1' revises '0001', which is not in its directory",
        "bad-dup": "Revision 0001 is present more than once",
        "bad-dep": "a revision refers to 'nope' (down_revision or depends_on)",
        "bad-nolabel": "revision 'rn1' is on branch label(s) none, not 'bad-nolabel'",
        "bad-missing": "register_migrations returned",
        "fine2": "its version table 'alembic_version_fine2' is already used by 'Fine2'",
    }
    for name, message in expected.items():
        assert got[name].error.startswith(f"plugin {name!r}: migrations refused: "), got[name]
        assert message in got[name].error, got[name].error
        assert got[name].applied == []
    assert (got["fine"].applied, got["fine"].error) == (["rf1", "rf2"], "")
    assert (got["Fine2"].applied, got["Fine2"].error) == (["rg1"], "")
    assert {"t_rf1", "t_rf2", "t_rg1"} <= tables(engine)
    assert not {"t_rd1", "t_rp1", "t_rn1"} & tables(engine)
    assert versions(engine, "alembic_version") == core_heads()  # the dup did not touch core


def test_a_dependency_that_failed_refuses_its_dependents(engine: Engine, tmp_path: Path) -> None:
    _revision(tmp_path / "a", "boom1", branch_labels=("dep-a",))
    _revision(tmp_path / "b", "rb1", branch_labels=("dep-b",), depends_on="boom1")
    dirs = [("dep-a", str(tmp_path / "a")), ("dep-b", str(tmp_path / "b"))]
    got = by_name(upgrade(engine, dirs))

    assert "failed: RuntimeError('broken migration')" in got["dep-a"].error
    assert (
        "it depends on revision(s) ['boom1'] of another branch, which are not applied"
        in got["dep-b"].error
    )
    # One transaction per branch: nothing of either stays.
    assert not {"t_rb1", "alembic_version_dep_b", "t_boom1", "alembic_version_dep_a"} & tables(
        engine
    )
    assert not got["core"].error


# The command line ---------------------------------------------------------------------


def _gakwaya(
    tmp_path: Path, database_url: str, *args: str, modules: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env.update(
        GAKWAYA_DATA_DIR=str(tmp_path / "data"),
        GAKWAYA_DATABASE_URL=database_url,
        GAKWAYA_PLUGIN_MODULES=modules,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    return subprocess.run(
        [sys.executable, "-m", "gakwaya", *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_command(database_url: str, tmp_path: Path, engine: Engine) -> None:
    every = f"{MODULES}.mig_child,{MODULES}.mig_base,{MODULES}.mig_badlabel"
    status_ = _gakwaya(tmp_path, database_url, "migrate", "--status", modules=every)
    assert status_.returncode == 0, status_.stderr
    assert re.search(r"^mig-base\s+at -\s+newest mb0001\s+pending$", status_.stdout, re.M)
    assert "mig_base_things" not in tables(engine)  # --status changes nothing

    first = _gakwaya(tmp_path, database_url, "migrate", modules=every)
    assert first.returncode == 1
    assert "warning: plugin 'mig-badlabel': migrations refused: " in first.stderr
    assert "up to date except for: mig-badlabel" in first.stdout
    assert {"mig_base_things", "mig_child_items"} <= tables(engine)

    after = _gakwaya(tmp_path, database_url, "migrate", "--status", modules=every)
    lines = after.stdout.splitlines()
    assert re.match(r"core\s+at \S+\s+newest \S+\s+up to date$", lines[0]), after.stdout
    assert re.match(r"mig-base\s+at mb0001\s+newest mb0001\s+up to date$", lines[1])
    assert re.match(r"mig-child\s+at mc0001\s+newest mc0001\s+up to date$", lines[2])
    assert "mig-badlabel" in lines[3] and "migrations refused" in lines[3]

    # mig-child uninstalled: migrate and --status carry on, and say what is left behind.
    only_base = f"{MODULES}.mig_base"
    again = _gakwaya(tmp_path, database_url, "migrate", modules=only_base)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    left = _gakwaya(tmp_path, database_url, "migrate", "--status", modules=only_base)
    assert left.returncode == 0, left.stderr
    assert "alembic_version_mig_child: no active plugin uses it" in left.stdout


@pytest.mark.redis
def test_worker_refuses_a_database_with_pending_plugin_migrations(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env.update(
        GAKWAYA_DATA_DIR=str(tmp_path / "data"),
        GAKWAYA_DATABASE_URL=database_url,
        GAKWAYA_REDIS_URL=redis_url,
        GAKWAYA_PLUGIN_MODULES=f"{MODULES}.mig_base",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    worker = subprocess.run(
        [sys.executable, "-m", "gakwaya", "worker", "--burst"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 1
    assert "the database needs migrations (mig-base): run `gakwaya migrate`" in worker.stderr


# The documentation's examples ---------------------------------------------------------

DOCS = ROOT / "docs" / "plugins"


def _blocks(page: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


def _doc_file(path: str) -> str:
    """The python block of migrations.md that starts with ``# <path>``."""
    for block in _blocks("migrations.md", "python"):
        if block.startswith(f"# {path}\n"):
            return block
    raise AssertionError(f"docs/plugins/migrations.md has no block for {path}")


def test_the_documented_hook_and_revision_migrate(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    """hooks.md's examples as one plugin module, placed in a package whose migrations
    directory holds migrations.md's first revision."""
    module = types.ModuleType("hooks_md_migrations")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    source = "\n".join(_blocks("hooks.md", "python"))
    exec(compile(source, str(DOCS / "hooks.md"), "exec"), module.__dict__)  # noqa: S102
    package = tmp_path / "src" / "gakwaya_hello"
    revision = "src/gakwaya_hello/migrations/hello_0001_greetings.py"
    (tmp_path / revision).parent.mkdir(parents=True)
    (tmp_path / revision).write_text(_doc_file(revision))
    module.__file__ = str(package / "plugin.py")
    module.MANIFEST = {  # type: ignore[attr-defined]
        "name": "hello",
        "version": "1.0",
        "core_api": ">=0.1",
        "provides": ["notifier:log"],
    }
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
    )
    kernel = Kernel.create(settings, extra_plugins=[("hello", module)])
    try:
        got = by_name(kernel.migrate())
        assert (got["hello"].applied, got["hello"].error) == (["hello_0001"], "")
        assert kernel.plugins.statuses["hello"].status == "active"
    finally:
        kernel.close()
    fks = inspect(engine).get_foreign_keys("hello_greetings")
    assert [fk["referred_table"] for fk in fks] == ["organizations"]
    assert versions(engine, "alembic_version_hello") == {"hello_0001"}


def test_the_documented_alembic_setup_writes_revisions_the_panel_accepts(
    tmp_path: Path,
) -> None:
    project = tmp_path / "gakwaya-hello"
    project.mkdir()
    alembic = str(Path(sys.executable).parent / "alembic")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}

    def run(command: str) -> str:
        args = shlex.split(command.split("#", 1)[0])
        assert args[0] == "alembic", command
        done = subprocess.run(
            [alembic, *args[1:]], cwd=project, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    for path in ("src/gakwaya_hello/models.py", "dev/alembic/env.py"):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
    (project / "src/gakwaya_hello/__init__.py").write_text("")
    (project / "src/gakwaya_hello/migrations").mkdir()

    setup, each_change = (
        [line for line in block.splitlines() if line and not line.startswith("#")]
        for block in _blocks("migrations.md", "sh")[:2]
    )
    run(setup[0])  # alembic init
    assert setup[1] == "rm -r dev/alembic/versions        # your revisions live in the package"
    shutil.rmtree(project / "dev/alembic/versions")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(project / "alembic.ini")
    for line in _blocks("migrations.md", "ini")[0].splitlines():
        key, _, value = line.partition(" = ")
        ini["alembic"][key] = value
    with (project / "alembic.ini").open("w") as f:
        ini.write(f)
    for path in ("src/gakwaya_hello/models.py", "dev/alembic/env.py"):
        (project / path).write_text(_doc_file(path))

    upgrade_heads, first, later = each_change
    run(upgrade_heads)
    run(first)
    run(upgrade_heads)
    run(later)

    written = sorted((project / "src/gakwaya_hello/migrations").glob("*.py"))
    assert [p.name for p in written] == [
        "hello_0001_greetings.py",
        "hello_0002_greeting_count.py",
    ]
    one, two = (p.read_text() for p in written)
    up = one.split("def downgrade")[0]
    assert re.findall(r"op\.create_table\('(\w+)'", up) == ["hello_greetings"]
    assert "drop" not in up  # core's table is left alone
    assert "branch_labels: Union[str, Sequence[str], None] = ('hello',)" in one
    # Nothing changed in the models: the second revision is empty.
    assert "op." not in two.split("def downgrade")[0]

    db = Database(f"sqlite:///{tmp_path / 'panel.db'}")
    try:
        got = by_name(upgrade(db.engine, [("hello", str(written[0].parent))]))
        assert (got["hello"].applied, got["hello"].error) == (["hello_0001", "hello_0002"], "")
    finally:
        db.dispose()
