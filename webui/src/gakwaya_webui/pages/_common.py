"""Shared by the organization and app pages: path segments, the caller's role, the
app a page is about. Everything comes from the API; nothing here decides access."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from litestar import Request

from gakwaya_webui.api import Api, ApiError

AnyRequest = Request[Any, Any, Any]
#: The API's page size limit: lists on a page show this many, then a "more" link.
PAGE_SIZE = 200
#: How many items ``all_items`` fetches at most: lists drawn whole (the organization's
#: projects in the overview's sections and the new-app form) stop there.
ALL_ITEMS_CAP = 5000
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")


def seg(value: object) -> str:
    """A value from the browser's URL, made safe as one segment of an API path: a
    value that is not a plain name (``..``, ``/``, spaces) is a 404, as the API
    would answer for a name that does not exist."""
    text = str(value)
    if not _SEGMENT.fullmatch(text) or text in (".", ".."):
        raise ApiError(404, "Not found", f"{text!r} not found")
    return quote(text, safe="")


def can(request: AnyRequest, role: str | None, permission: str) -> bool:
    """Whether to offer a form: a courtesy only, the API decides."""
    try:
        from gakwaya_webui.contributions import allowed
    except ImportError:  # pragma: no cover - the module ships with the dashboard
        return role is not None and role != "viewer"
    try:
        return allowed(request, role, permission)
    except Exception:
        return role is not None and role != "viewer"


async def org_of(api: Api, org: str) -> dict[str, Any]:
    """The organization with the caller's role (404 when they are not a member)."""
    result: dict[str, Any] = await api.get(f"/orgs/{seg(org)}")
    return result


async def all_items(api: Api, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every item of an API list, following its ``next_cursor`` page by page (up to
    ``ALL_ITEMS_CAP``): for lists a page draws whole, where a first page would silently
    drop the rest."""
    items: list[Any] = []
    cursor = None
    while True:
        answer = await api.get(path, {**(params or {}), "limit": PAGE_SIZE, "cursor": cursor})
        items.extend(answer["items"])
        cursor = answer.get("next_cursor")
        if not cursor or len(items) >= ALL_ITEMS_CAP:
            return items[:ALL_ITEMS_CAP]


async def app_of(api: Api, org: str, app_id: int) -> dict[str, Any]:
    result: dict[str, Any] = await api.get(f"/orgs/{seg(org)}/apps/{int(app_id)}")
    return result


def int_or_none(value: str) -> int | str | None:
    """A number field: the int, None when empty, the text itself when not a number
    (so the API refuses it, naming the field)."""
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def float_or_none(value: str) -> float | str | None:
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value
