"""Delivering events published by other processes, through Redis pub/sub.

Every process publishes ``{id, type, origin, org_id}`` of each event it stores on
the ``gakwaya:events`` channel. The relay thread of every other process
subscribes to it, loads the stored event by id and hands it to that process's
``on_event`` subscribers and live streams.

Pub/sub loses what is published while a subscriber is disconnected, so the relay
also reads the table: after each (re)subscription it delivers the events of
other processes stored since its *watermark*. The watermark moves forward only
to an id sampled one sync interval earlier while the connection stayed up (by
then that event's message has long arrived), and the ids delivered since the
watermark are remembered, so nothing is delivered twice and memory stays small.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import func, select

from gakwaya.db.models import StoredEvent

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import PubSub

    from gakwaya.events.bus import EventBus

log = logging.getLogger("gakwaya.events.relay")

CHANNEL = "gakwaya:events"
_BATCH = 500


class RelayMessage(msgspec.Struct, kw_only=True):
    """What goes over Redis: enough to find the stored event and skip our own."""

    id: int
    type: str
    origin: str
    org_id: int | None = None


def encode_message(event_id: int, type_name: str, origin: str, org_id: int | None) -> bytes:
    return msgspec.json.encode(
        RelayMessage(id=event_id, type=type_name, origin=origin, org_id=org_id)
    )


def latest_event_id(bus: EventBus) -> int:
    with bus.kernel.db.session() as db:
        return int(db.scalar(select(func.max(StoredEvent.id))) or 0)


class RedisRelay:
    """The subscriber thread of one process. ``start`` / ``stop`` may be called again."""

    #: Seconds between watermark samples (see the module docstring).
    sync_interval = 30.0
    #: Reconnection backoff: first and longest wait, in seconds.
    backoff_min = 0.2
    backoff_max = 5.0

    def __init__(self, bus: EventBus, url: str, *, channel: str = CHANNEL) -> None:
        self.bus = bus
        self.url = url
        self.channel = channel
        #: Set while subscribed (the server confirmed SUBSCRIBE); tests and /readyz read it.
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watermark = 0
        self._pending_mark: int | None = None
        self._seen: set[int] = set()
        self._decoder = msgspec.json.Decoder(RelayMessage)

    # Life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._watermark = latest_event_id(self.bus)
        self._seen.clear()
        self._thread = threading.Thread(target=self._run, name="gakwaya-event-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("event relay did not stop within %ss", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # The thread ----------------------------------------------------------------------------

    def _client(self) -> Redis:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries inside redis-py: a lost connection must surface here, so that
        # the relay resubscribes and reads what it missed from the table.
        return Redis.from_url(
            self.url,
            health_check_interval=10,
            socket_connect_timeout=5,
            socket_timeout=15,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
        )

    def _run(self) -> None:
        backoff = self.backoff_min
        reported = False  # one warning per outage, not one per attempt
        while not self._stop.is_set():
            client = self._client()
            pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                self._listen(pubsub)
            except Exception as exc:
                if self.subscribed.is_set():
                    log.warning("event relay lost Redis (%r); reconnecting", exc)
                    backoff, reported = self.backoff_min, True
                elif not reported:
                    log.warning("event relay cannot reach Redis (%r); retrying", exc)
                    reported = True
                else:
                    log.debug("event relay cannot reach Redis: %r", exc)
            finally:
                self.subscribed.clear()
                self._pending_mark = None
                # Closing a dead connection may fail too.
                with contextlib.suppress(Exception):
                    pubsub.close()
                    client.close()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.backoff_max)

    def _listen(self, pubsub: PubSub) -> None:
        last_tick = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                kind = message.get("type")
                if kind == "subscribe":
                    self._catch_up()
                    self.subscribed.set()
                    log.info("event relay subscribed to %s", self.channel)
                elif kind == "message":
                    self._handle(message.get("data"))
            now = time.monotonic()
            if self.subscribed.is_set() and now - last_tick >= self.sync_interval:
                self._tick()
                last_tick = now

    # Delivery ------------------------------------------------------------------------------

    def _handle(self, data: object) -> None:
        if not isinstance(data, bytes | str):
            return
        try:
            msg = self._decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("event relay ignored a malformed message: %r", data[:200])
            return
        if msg.origin == self.bus.origin or msg.id in self._seen:
            return
        with self.bus.kernel.db.session() as db:
            row = db.get(StoredEvent, msg.id)
        if row is None:  # pruned already, or another installation on this Redis
            return
        self._deliver(row)

    def _catch_up(self) -> None:
        cursor = self._watermark
        while not self._stop.is_set():
            with self.bus.kernel.db.session() as db:
                rows = list(
                    db.scalars(
                        select(StoredEvent)
                        .where(
                            StoredEvent.id > cursor,
                            StoredEvent.origin != self.bus.origin,
                        )
                        .order_by(StoredEvent.id)
                        .limit(_BATCH)
                    )
                )
            for row in rows:
                if row.id not in self._seen:
                    self._deliver(row)
            if len(rows) < _BATCH:
                return
            cursor = rows[-1].id

    def _deliver(self, row: StoredEvent) -> None:
        self._seen.add(row.id)
        self.bus.waiters.notify(row.org_id)
        try:
            event = self.bus.decode(row.type, row.payload)
        except Exception as exc:
            # A type this process does not load (a plugin installed elsewhere only):
            # streams still show it; subscribers here cannot receive it typed.
            log.debug("event %s of type %s not delivered here: %r", row.id, row.type, exc)
            return
        self.bus.deliver(event, row.id)

    def _tick(self) -> None:
        if self._pending_mark is not None:
            self._watermark = max(self._watermark, self._pending_mark)
            self._seen = {i for i in self._seen if i > self._watermark}
        self._pending_mark = latest_event_id(self.bus)
