"""Running the Alembic migrations from the kernel (``gakwaya migrate`` and start-up).

Core's revisions are the ``core`` branch; each plugin that implements
``register_migrations`` ships its own branch, labelled with the plugin's name.
``upgrade`` applies core first, then each plugin's branch in load order (a
plugin's requirements before it).

Every branch keeps its position in its own version table: ``alembic_version``
for core (as a plain Alembic set-up has it), ``alembic_version_<plugin>`` for a
plugin. One shared table does not survive a plugin that goes away: Alembic
refuses to work with a row whose revision it cannot find, and a revision that
``depends_on`` a core revision replaces that core revision's row, so core's own
position would leave with the plugin. With one table per branch, the branch of a
disabled or removed plugin is simply not read: its tables and its version table
stay as they are, and it continues from there when the plugin comes back.

A plugin revision may ``depends_on`` a revision of core or of another plugin.
Those live in other version tables, so each branch is planned from its own
position *plus* the current positions of the others, and a plan that would run
any revision outside the branch (a dependency that is not applied) is refused.

A plugin whose branch breaks a rule, or whose migration fails, is reported in
its :class:`BranchState` (``error``) and the other plugins still migrate; a
failure in core raises, since nothing works without core's tables.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

#: Core's branch label (on ``0001``) and version table.
CORE = "core"
CORE_VERSION_TABLE = "alembic_version"
PLUGIN_VERSION_TABLE_PREFIX = "alembic_version_"
#: PostgreSQL truncates identifiers to 63 bytes; Alembic names the primary key
#: ``<table>_pkc``, so the table name keeps 4 bytes for that.
_MAX_TABLE_NAME = 59

#: Alembic reports these through ``warnings`` and carries on with a partial map.
_FATAL_WARNINGS = ("present more than once", "is not present", "loaded twice")


def migrations_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    # Working tree: <repo>/core/src/gakwaya/db/migrate.py → <repo>/migrations
    return Path(__file__).resolve().parents[4] / "migrations"


def core_versions_dir() -> Path:
    return migrations_dir() / "versions"


def alembic_config(url: str) -> Config:
    """Core's branch alone, through ``migrations/env.py``: for Alembic's own commands
    (autogenerate, downgrade in tests). The kernel migrates with :func:`upgrade`."""
    cfg = Config()
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def version_table_for(plugin: str) -> str:
    """``alembic_version_<plugin>``, lower case, ``-`` and ``.`` as ``_``."""
    slug = re.sub(r"[^a-z0-9_]", "_", plugin.lower())
    name = PLUGIN_VERSION_TABLE_PREFIX + slug
    if len(name) <= _MAX_TABLE_NAME:
        return name
    digest = hashlib.sha256(plugin.encode()).hexdigest()[:8]
    return name[: _MAX_TABLE_NAME - 9] + "_" + digest


@dataclass
class BranchState:
    """Where one branch stands. ``error`` says why its migrations were refused."""

    name: str
    version_table: str
    directory: str = ""
    #: Revisions recorded in the branch's version table.
    current: tuple[str, ...] = ()
    #: The branch's newest revisions in its directory.
    heads: tuple[str, ...] = ()
    #: Revisions :func:`upgrade` applied in this run, in order.
    applied: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def pending(self) -> bool:
        return not self.error and set(self.current) != set(self.heads)


class MigrationRefused(Exception):
    """A branch cannot be migrated; the message names the plugin and the rule."""


@dataclass
class _Branch:
    state: BranchState
    #: Every revision id of the branch (the files of its directory).
    own: frozenset[str] = frozenset()


@dataclass
class _Plan:
    script: ScriptDirectory
    branches: list[_Branch]
    refused: list[BranchState]
    #: Every revision of ``script`` by id.
    known: dict[str, Script] = field(default_factory=dict)


def _script(locations: Iterable[Path]) -> ScriptDirectory:
    return ScriptDirectory(
        str(migrations_dir()),
        file_template="%(rev)s_%(slug)s",
        version_locations=[str(p) for p in locations],
    )


def _load(script: ScriptDirectory) -> list[Script]:
    """Every revision, or an exception when the files do not make one history."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            revisions = list(script.walk_revisions())
        finally:
            # Alembic warns, then may fail further on for the same cause: the warning
            # is the message that names it (a raise here replaces the exception).
            for warning in caught:
                if any(text in str(warning.message) for text in _FATAL_WARNINGS):
                    raise MigrationRefused(str(warning.message))
    return revisions


def _own(revisions: Sequence[Script], directory: Path) -> list[Script]:
    return [r for r in revisions if Path(r.path).resolve().parent == directory]


def _heads(revisions: Sequence[Script]) -> tuple[str, ...]:
    """The revisions of one branch that no other revision of it revises."""
    revised = {down for r in revisions for down in r._versioned_down_revisions}
    return tuple(r.revision for r in revisions if r.revision not in revised)


def _why_unreadable(exc: BaseException) -> str:
    if isinstance(exc, MigrationRefused):
        return str(exc)
    if isinstance(exc, KeyError):
        return (
            f"a revision refers to {exc.args[0]!r} (down_revision or depends_on), "
            "which is not a known revision of core or of an active plugin"
        )
    return f"{type(exc).__name__}: {exc}"


def _check_plugin(
    name: str, directory: Path, revisions: Sequence[Script]
) -> tuple[list[Script], str]:
    """The plugin's revisions, or the rule its directory breaks."""
    own = _own(revisions, directory)
    own_ids = {r.revision for r in own}
    rule = (
        f"a plugin's first revision has down_revision = None and branch_labels = "
        f"({name!r},), and its other revisions revise revisions of the same branch"
    )
    for rev in own:
        foreign = [d for d in rev._versioned_down_revisions if d not in own_ids]
        if foreign:
            return own, (
                f"revision {rev.revision!r} revises {foreign[0]!r}, which is not in its "
                f"directory ({rule}; use depends_on for another branch's revisions)"
            )
        if set(rev.branch_labels) != {name}:
            labels = sorted(rev.branch_labels) or "none"
            return own, (
                f"revision {rev.revision!r} is on branch label(s) {labels}, not {name!r} ({rule})"
            )
    return own, ""


def _plan(plugin_dirs: Sequence[tuple[str, str]]) -> _Plan:
    """Core's branch and every plugin branch that follows the rules, in load order.

    Each plugin is tried together with core and the plugins accepted before it, so
    the one whose files break the history is refused and named, not the others.
    """
    core = core_versions_dir().resolve()
    script = _script([core])
    core_revs = _load(script)  # a broken core history is a bug: let it raise
    plan = _Plan(
        script=script,
        branches=[
            _Branch(
                BranchState(
                    name=CORE,
                    version_table=CORE_VERSION_TABLE,
                    directory=str(core),
                    heads=_heads(core_revs),
                ),
                frozenset(r.revision for r in core_revs),
            )
        ],
        refused=[],
        known={r.revision: r for r in core_revs},
    )
    locations = [core]
    tables = {CORE_VERSION_TABLE: CORE}
    for name, raw in plugin_dirs:
        state = BranchState(name=name, version_table=version_table_for(name), directory=raw)
        try:
            trial, revisions, own = _try_plugin(name, Path(raw), locations, tables)
        except MigrationRefused as exc:
            state.error = f"plugin {name!r}: migrations refused: {exc}"
            plan.refused.append(state)
            continue
        tables[state.version_table] = name
        if own:
            locations.append(Path(raw).resolve())
            plan.script = trial
            plan.known = {r.revision: r for r in revisions}
            state.heads = _heads(own)
        # (An empty directory is listed too, with nothing to apply.)
        plan.branches.append(_Branch(state, frozenset(r.revision for r in own)))
    return plan


def _try_plugin(
    name: str, raw: Path, locations: list[Path], tables: dict[str, str]
) -> tuple[ScriptDirectory, list[Script], list[Script]]:
    """(script with this plugin added, all its revisions, the plugin's own), or
    :class:`MigrationRefused` naming the rule the plugin's directory breaks."""
    table = version_table_for(name)
    if table in tables:
        raise MigrationRefused(
            f"its version table {table!r} is already used by {tables[table]!r} "
            "(plugin names that differ only in case, '-', '_' or '.' share one)"
        )
    directory = raw.resolve()
    if not directory.is_dir():
        raise MigrationRefused(f"register_migrations returned {str(raw)!r}, not a directory")
    trial = _script([*locations, directory])
    try:
        revisions = _load(trial)
    except Exception as exc:
        raise MigrationRefused(
            f"its migrations in {raw} cannot be read: {_why_unreadable(exc)}"
        ) from exc
    own, error = _check_plugin(name, directory, revisions)
    if error:
        raise MigrationRefused(error)
    return trial, revisions, own


def _newest(revisions: tuple[str, ...], known: dict[str, Script]) -> tuple[str, ...]:
    """Leave out the revisions another one of them builds on (through down_revision or
    depends_on): Alembic refuses a starting point that names both."""
    below: set[str] = set()
    todo = [down for rev in revisions for down in known[rev]._all_down_revisions]
    while todo:
        rev = todo.pop()
        if rev not in below:
            below.add(rev)
            todo.extend(known[rev]._all_down_revisions)
    return tuple(dict.fromkeys(r for r in revisions if r not in below))


def _current(conn: Connection, version_table: str) -> tuple[str, ...]:
    ctx = MigrationContext.configure(conn, opts={"version_table": version_table})
    return tuple(ctx.get_current_heads())


def _steps(plan: _Plan, branch: _Branch, heads: tuple[str, ...], others: tuple[str, ...]) -> Any:
    """The branch's revisions to apply, planned from its own position plus the other
    branches' (what its ``depends_on`` may name); only ever its own revisions."""
    state = branch.state
    stray = [h for h in heads if h not in branch.own]
    if stray:
        raise MigrationRefused(
            f"its version table {state.version_table!r} is at {stray}, which its "
            "migrations do not contain (an older version of the plugin?)"
        )
    target: Any = state.heads
    current: Any = _newest(heads + others, plan.known)
    planned = plan.script._upgrade_revs(target, current)
    outside = [s.revision.revision for s in planned if s.revision.revision not in branch.own]
    if outside:
        raise MigrationRefused(
            f"it depends on revision(s) {outside} of another branch, which are not "
            "applied (is the plugin that ships them active, and did it migrate?)"
        )
    return planned


def _run_branch(engine: Engine, plan: _Plan, branch: _Branch) -> None:
    """Apply one branch in one transaction. Planned before anything is written, so a
    refused plan leaves no trace (not even an empty version table)."""
    state = branch.state
    if not branch.own:
        return
    with engine.begin() as conn:
        heads = _current(conn, state.version_table)
        others = tuple(
            rev
            for other in plan.branches
            if other is not branch
            for rev in _current(conn, other.state.version_table)
            if rev in plan.known
        )
        planned = _steps(plan, branch, heads, others)
        state.current = heads
        if not planned:
            return
        env = EnvironmentContext(alembic_config(""), plan.script, fn=lambda _h, _c: planned)
        with env:
            env.configure(connection=conn, version_table=state.version_table)
            with env.begin_transaction():
                env.run_migrations()
        state.applied = [step.revision.revision for step in planned]
        state.current = _current(conn, state.version_table)


def upgrade(engine: Engine, plugin_dirs: Sequence[tuple[str, str]] = ()) -> list[BranchState]:
    """Core to its head, then each plugin branch in the order given (load order).

    ``plugin_dirs`` is :meth:`PluginHost.migration_dirs`. Returns every branch's
    state, core first; a refused plugin has ``error`` set and nothing applied.
    """
    plan = _plan(plugin_dirs)
    core, *plugins = plan.branches
    _run_branch(engine, plan, core)  # raises: nothing works without core's tables
    for branch in plugins:
        try:
            _run_branch(engine, plan, branch)
        except Exception as exc:
            why = str(exc) if isinstance(exc, MigrationRefused) else f"failed: {exc!r}"
            branch.state.error = f"plugin {branch.state.name!r}: migrations refused: {why}"
            branch.state.applied = []
            with engine.connect() as conn:
                branch.state.current = _current(conn, branch.state.version_table)
    return _in_order(plan, plugin_dirs)


def status(engine: Engine, plugin_dirs: Sequence[tuple[str, str]] = ()) -> list[BranchState]:
    """Every branch's position and heads, without changing anything."""
    plan = _plan(plugin_dirs)
    with engine.connect() as conn:
        for state in [b.state for b in plan.branches] + plan.refused:
            state.current = _current(conn, state.version_table)
    return _in_order(plan, plugin_dirs)


def pending(engine: Engine, plugin_dirs: Sequence[tuple[str, str]] = ()) -> bool:
    """True when core or an active plugin's branch is not at its newest revision.

    A refused branch does not count (migrating would not change it), nor does the
    version table of a plugin that is not active."""
    return any(state.pending for state in status(engine, plugin_dirs))


def stray_version_tables(engine: Engine, states: Sequence[BranchState]) -> list[str]:
    """Version tables of plugins that are not active (disabled or removed): their
    tables are kept and not upgraded."""
    known = {s.version_table for s in states}
    names = inspect(engine).get_table_names()
    return sorted(n for n in names if n.startswith(PLUGIN_VERSION_TABLE_PREFIX) and n not in known)


def _in_order(plan: _Plan, plugin_dirs: Sequence[tuple[str, str]]) -> list[BranchState]:
    """Core, then the plugins in the order given (accepted and refused together)."""
    by_name = {b.state.name: b.state for b in plan.branches[1:]}
    by_name.update({s.name: s for s in plan.refused})
    core = plan.branches[0].state
    return [core] + [by_name[name] for name, _ in plugin_dirs if name in by_name]
