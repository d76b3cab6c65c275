"""Small helpers shared by the organization and API-key tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gakwaya.db.models import StoredEvent
from gakwaya.kernel import Kernel

API = "/api/v1"

#: Bad slugs: shell metacharacters, traversal, option injection, case, length.
BAD_SLUGS = [
    "a;b",
    "$(id)",
    "`id`",
    "..",
    "../etc",
    "-rf",
    "abc-",
    "abc\n",
    "a\nb",
    "Acme",
    "ACME",
    "a b",
    "a_b",
    "a/b",
    "a" * 41,
    "",
]

#: Bad display names: control characters, empty, too long.
BAD_NAMES = ["", "a\nb", "trailing\n", "tab\there", "nul\x00", "bell\x07", "del\x7f", "x" * 101]

BAD_EMAILS = [
    "",
    "not-an-email",
    "a b@example.com",
    "x@y",
    "a@example.com\n",
    "$(id)@example.com",
    "a@-example.com",
    "a@exa mple.com",
    "@example.com",
    "a" * 65 + "@example.com",
]


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def assert_invalid(response: Any, field: str) -> None:
    """A 422 whose problem names ``field`` (``scopes`` also matches ``scopes[1]``)."""
    assert response.status_code == 422, response.text
    names = fields(response)
    assert any(f == field or f.startswith(f"{field}[") for f in names), (field, names)
    assert field in response.json()["detail"]


def events_of(kernel: Kernel, type_name: str) -> list[dict[str, Any]]:
    with kernel.db.session() as db:
        rows = db.scalars(
            select(StoredEvent).where(StoredEvent.type == type_name).order_by(StoredEvent.id)
        ).all()
        return [dict(r.payload, org_id=r.org_id) for r in rows]


def all_event_payloads(kernel: Kernel) -> str:
    with kernel.db.session() as db:
        return " ".join(str(r.payload) for r in db.scalars(select(StoredEvent)).all())
