"""Typed domain events.

Every event is a msgspec Struct subclassing :class:`Event` with a ``tag``: the
event type name, dotted and past tense (``deployment.succeeded``). Events are
stored, delivered to ``on_event`` subscribers in every process and streamed to
clients, so they carry identifiers and facts, never secrets.

Example::

    class BackupFinished(Event, tag="backup.finished"):
        database_id: int
        size_bytes: int
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class _TypeName:
    """``Event.type_name``: the class's tag. Read from msgspec's config on access, because
    ``__init_subclass__`` runs before msgspec has set the subclass's own config."""

    def __get__(self, obj: object, owner: type | None = None) -> str:
        cls = owner if owner is not None else type(obj)
        tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
        return tag if isinstance(tag, str) else ""


class Event(msgspec.Struct, kw_only=True, tag_field="type"):
    """Base class of every event. ``org_id`` is None for installation-wide events."""

    org_id: int | None = None

    type_name: ClassVar[_TypeName] = _TypeName()


class EventEnvelope(msgspec.Struct, kw_only=True):
    """An event as stored and delivered: its id, time and decoded payload."""

    id: int
    type: str
    org_id: int | None
    created_at: str
    payload: dict[str, Any]
