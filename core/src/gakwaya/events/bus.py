"""Publishing events: store, then deliver in this process (and, with Redis, in others)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from gakwaya.db.models import StoredEvent
from gakwaya_sdk.events import Event

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.events")


class UnknownEventType(Exception):
    pass


class EventBus:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.types: dict[str, type[Event]] = {}
        for plugin, cls in kernel.plugins.event_types():
            name = getattr(cls, "type_name", None)
            if not name:
                log.warning("event type %r from %s has no tag; ignored", cls, plugin)
                continue
            self.types[name] = cls

    def publish(self, event: Event) -> int:
        """Store ``event`` and deliver it to this process's subscribers; return its id.

        Call it after the change it describes is committed, so subscribers see it.
        """
        name = type(event).type_name
        if self.types.get(name) is not type(event):
            raise UnknownEventType(f"event type {name!r} is not registered")
        payload = msgspec.to_builtins(event)
        with self.kernel.db.transaction() as db:
            row = StoredEvent(
                type=name, org_id=event.org_id, payload=payload, origin=self.kernel.process_id
            )
            db.add(row)
            db.flush()
            event_id = row.id
        self.deliver(event, event_id)
        return event_id

    def decode(self, type_name: str, payload: dict[str, object]) -> Event:
        cls = self.types[type_name]
        return msgspec.convert(payload, cls)

    def deliver(self, event: Event, event_id: int) -> None:
        for failure in self.kernel.plugins.on_event(event, event_id):
            log.error("%s", failure)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
