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


class Event(msgspec.Struct, kw_only=True, tag_field="type"):
    """Base class of every event. ``org_id`` is None for installation-wide events."""

    org_id: int | None = None

    type_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        tag = cls.__struct_config__.tag
        if isinstance(tag, str):
            cls.type_name = tag


class EventEnvelope(msgspec.Struct, kw_only=True):
    """An event as stored and delivered: its id, time and decoded payload."""

    id: int
    type: str
    org_id: int | None
    created_at: str
    payload: dict[str, Any]
