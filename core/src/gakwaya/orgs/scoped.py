"""The one scoped data-access layer for objects that belong to an organization.

Every lookup of an org-owned row by an identifier the client sent goes through
here, with the organization resolved by the middleware. A row of another
organization is then indistinguishable from a row that does not exist: the
caller gets a 404 that names only what it asked for, never a 403 and never
anything about the other organization.

Any model with an ``org_id`` column works::

    app = get_in_org(db, App, app_id, org.id, what="app")
    rows = db.scalars(in_org(App, org.id).order_by(App.id.desc())).all()
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from gakwaya.errors import NotFound


class _OrgOwned(Protocol):
    org_id: Any


M = TypeVar("M", bound=_OrgOwned)


def in_org(model: type[M], org_id: int) -> Select[M]:
    """``SELECT model WHERE org_id = :org_id``: start every list query of org rows here."""
    return select(model).where(model.org_id == org_id)


def find_in_org(
    db: Session,
    model: type[M],
    ident: object,
    org_id: int,
    *,
    column: InstrumentedAttribute[Any] | None = None,
    for_update: bool = False,
) -> M | None:
    """The row of ``model`` whose ``column`` (default: ``id``) is ``ident`` in ``org_id``."""
    key = column if column is not None else model.id  # type: ignore[attr-defined]
    query = in_org(model, org_id).where(key == ident)
    if for_update:
        query = query.with_for_update()
    return db.scalars(query).first()


def get_in_org(
    db: Session,
    model: type[M],
    ident: object,
    org_id: int,
    *,
    what: str = "object",
    column: InstrumentedAttribute[Any] | None = None,
    for_update: bool = False,
) -> M:
    """Like :func:`find_in_org`, but a missing row (or another org's) is a 404.

    The message names ``what`` and the identifier the client sent, nothing more.
    """
    row = find_in_org(db, model, ident, org_id, column=column, for_update=for_update)
    if row is None:
        raise NotFound(f"{what} {ident} not found in this organization")
    return row


__all__ = ["find_in_org", "get_in_org", "in_org"]
