"""Publishing events: store, then deliver in this process and, with Redis, in others.

``publish`` commits the event to the ``events`` table first, so every later
reader (live streams, outgoing webhooks, the relay of another process) finds it
by id. On PostgreSQL the insert holds a transaction-scoped advisory lock, so ids
become visible in increasing order: a stream that has shown id N never later
finds a smaller id committed behind it. (SQLite serializes writers anyway.)
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import text

from gakwaya.db.models import StoredEvent
from gakwaya.events.notify import Waiters
from gakwaya.events.relay import CHANNEL, RedisRelay, encode_message
from gakwaya_sdk.events import Event

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.events")

_PG_LOCK_KEY = 0x6761_6B65  # "gake"


class UnknownEventType(Exception):
    """The event's class is not in the registry (``register_event_types``)."""


class EventBus:
    #: Seconds between keepalive comments on a quiet live stream; each one is also a
    #: check of the table, for events another process stored without Redis.
    stream_keepalive = 15.0

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.types: dict[str, type[Event]] = {}
        self.owners: dict[str, str] = {}
        for plugin, cls in kernel.plugins.event_types():
            name = getattr(cls, "type_name", None)
            if not name or not isinstance(cls, type) or not issubclass(cls, Event):
                log.warning("event type %r from %s is not a tagged Event; ignored", cls, plugin)
                continue
            if name in self.types and self.types[name] is not cls:
                log.warning(
                    "event type %r from %s ignored: already registered by %s",
                    name,
                    plugin,
                    self.owners[name],
                )
                continue
            self.types[name] = cls
            self.owners[name] = plugin
        self.waiters = Waiters()
        self._pid = os.getpid()
        #: True between ``stop()`` and the next ``start()``: live streams end.
        self.closed = False
        self.relay: RedisRelay | None = (
            RedisRelay(self, kernel.settings.redis_url) if kernel.settings.redis_url else None
        )

    @property
    def origin(self) -> str:
        """Who publishes: ``kernel.process_id``, or, in a process forked after the kernel
        was made (rq's work horse), a name of its own, so that the parent's relay does
        not take the child's events for its own and skip them."""
        pid = os.getpid()
        if pid == self._pid:
            return self.kernel.process_id
        return f"{self.kernel.process_id}/{pid}"

    # Publishing ------------------------------------------------------------------------------

    def publish(self, event: Event) -> int:
        """Store ``event`` and deliver it to every process's subscribers; return its id.

        Call it after the change it describes is committed, so subscribers see it.
        Subscribers' failures never reach the caller; neither does an unreachable
        Redis (the event is stored, and other processes' relays read it from the
        table when they reconnect).
        """
        cls = type(event)
        name = cls.type_name
        if not name or self.types.get(name) is not cls:
            raise UnknownEventType(
                f"event type {name or cls.__name__!r} is not registered "
                "(return its class from a register_event_types hook)"
            )
        payload = msgspec.to_builtins(event)
        with self.kernel.db.transaction(write=True) as db:
            if self.kernel.db.engine.dialect.name == "postgresql":
                db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            row = StoredEvent(type=name, org_id=event.org_id, payload=payload, origin=self.origin)
            db.add(row)
            db.flush()
            event_id = row.id
        self.waiters.notify(event.org_id)
        self._broadcast(event_id, name, event.org_id)
        self.deliver(event, event_id)
        return event_id

    def _broadcast(self, event_id: int, name: str, org_id: int | None) -> None:
        if not self.kernel.settings.redis_url:
            return
        try:
            redis = self.kernel.redis
            assert redis is not None
            redis.publish(CHANNEL, encode_message(event_id, name, self.origin, org_id))
        except Exception as exc:
            log.warning(
                "event %s stored but not announced on Redis (%r); other processes "
                "will read it when their relay reconnects",
                event_id,
                exc,
            )

    def decode(self, type_name: str, payload: dict[str, object]) -> Event:
        """A stored payload → its typed event; KeyError for a type not loaded here."""
        cls = self.types[type_name]
        return msgspec.convert(payload, cls)

    def deliver(self, event: Event, event_id: int) -> None:
        """Hand ``event`` to this process's ``on_event`` subscribers (failures contained:
        logged, and the failing plugin is marked degraded)."""
        for failure in self.kernel.plugins.on_event(event, event_id):
            log.error("%s", failure)

    # Background -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the Redis relay (when Redis is configured)."""
        self.closed = False
        if self.relay is not None:
            self.relay.start()

    def stop(self) -> None:
        """Stop the relay and end live streams."""
        self.closed = True
        self.waiters.notify_all()
        if self.relay is not None:
            self.relay.stop()
