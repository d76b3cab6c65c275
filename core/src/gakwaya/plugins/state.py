"""Per-installation enable/disable of plugins, kept in the ``plugin_state`` table.

A change takes effect at the next start of each process (the plugin set is fixed
for a process's life: routes and permissions are built from it).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from gakwaya.db import Database
from gakwaya.db.base import utcnow
from gakwaya.db.models import PluginState
from gakwaya.errors import Conflict, NotFound
from gakwaya.plugins.host import PluginHost, PluginStatus

log = logging.getLogger("gakwaya.plugins")


def read_state(db: Database) -> dict[str, bool]:
    """Every persisted choice; empty when the table does not exist yet (before migrate)."""
    try:
        with db.session() as session:
            rows = session.execute(select(PluginState.name, PluginState.enabled)).all()
    except DBAPIError as exc:
        # No table before 'gakwaya migrate', or no database at all: the command that
        # needs the database reports that itself, in one line.
        log.debug("plugin state not read: %s", type(exc).__name__)
        return {}
    return {row.name: row.enabled for row in rows}


def set_enabled(
    db: Database, host: PluginHost, name: str, *, enabled: bool, by: str
) -> PluginStatus:
    """Persist the choice for a plugin this host knows; essential ones cannot be disabled."""
    status = host.statuses.get(name)
    if status is None:
        raise NotFound(f"plugin {name!r} not found")
    if not enabled and status.essential:
        raise Conflict(f"plugin {name!r} is essential and cannot be disabled")
    with db.transaction() as session:
        row = session.get(PluginState, name)
        if row is None:
            row = PluginState(name=name)
            session.add(row)
        row.enabled = enabled
        row.changed_at = utcnow()
        row.changed_by = by
    return status
