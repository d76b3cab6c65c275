"""Keyset pagination shared by every list endpoint.

Lists return ``{"items": [...], "next_cursor": "..."}``; pass ``cursor`` back to
get the next page. Cursors are opaque to clients (the last id seen, newest first).
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

Limit = Annotated[int, msgspec.Meta(ge=1, le=200, description="page size, 1 to 200")]
#: ``limit`` as a query parameter: Litestar ignores msgspec.Meta bounds on query
#: parameters, so a handler takes ``limit: LimitQuery = DEFAULT_LIMIT``.
LimitQuery = Annotated[int, QueryParameter(ge=1, le=200, description="page size, 1 to 200")]
DEFAULT_LIMIT = 50


class Page(msgspec.Struct, Generic[T], kw_only=True):
    items: list[T]
    next_cursor: str | None = None


def parse_cursor(cursor: str | None) -> int | None:
    """Cursor → last id; a malformed cursor is a 422 naming the field."""
    if cursor is None or cursor == "":
        return None
    from gakwaya.errors import FieldError

    if not cursor.isdigit() or len(cursor) > 18:
        raise FieldError("cursor", "must be a value returned as next_cursor by this list")
    return int(cursor)


def next_cursor(ids: list[int], limit: int) -> str | None:
    """The cursor for the page after one that returned ``ids`` (fetched as limit + 1)."""
    return str(ids[limit - 1]) if len(ids) > limit else None
