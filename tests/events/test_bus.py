"""Publishing: stored, delivered typed to local subscribers, failures contained."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gakwaya.db.models import StoredEvent
from gakwaya.events.bus import UnknownEventType
from gakwaya.kernel import Kernel
from gakwaya_sdk.events import Event
from tests.events.sample import Boom, Ping, Recorder


def test_publish_stores_then_delivers_typed(kernel: Kernel, recorder: Recorder) -> None:
    event = Ping(org_id=7, note="hello")
    event_id = kernel.events.publish(event)
    with kernel.db.session() as db:
        row = db.get(StoredEvent, event_id)
    assert row is not None
    assert (row.type, row.org_id, row.origin) == ("test.ping", 7, kernel.process_id)
    assert row.payload["note"] == "hello"
    assert recorder.received == [(event, event_id)]
    received, _ = recorder.received[0]
    assert type(received) is Ping
    # The stored payload decodes to the same typed event.
    assert kernel.events.decode(row.type, row.payload) == event


def test_ids_increase(kernel: Kernel, recorder: Recorder) -> None:
    ids = [kernel.events.publish(Ping(org_id=1, note=str(i))) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert recorder.ids() == ids


class Unregistered(Event, tag="test.unregistered"):
    pass


class Impostor(Event, tag="test.ping"):
    """Same tag as a registered type, but not the registered class."""

    note: str


def test_unregistered_types_are_refused(kernel: Kernel, recorder: Recorder) -> None:
    for event in (Unregistered(org_id=1), Impostor(org_id=1, note="x")):
        with pytest.raises(UnknownEventType, match="not registered"):
            kernel.events.publish(event)
    with kernel.db.session() as db:
        assert db.scalar(select(func.count()).select_from(StoredEvent)) == 0
    assert recorder.received == []
    assert "test.ping" in kernel.events.types and "test.unregistered" not in kernel.events.types


def test_failing_subscriber_is_contained_and_degraded(kernel: Kernel, recorder: Recorder) -> None:
    assert kernel.plugins.statuses["test.exploder"].status == "active"
    event_id = kernel.events.publish(Boom(org_id=3))
    # The publisher got its id, the other subscriber its event, the event is stored.
    assert recorder.ids() == [event_id]
    with kernel.db.session() as db:
        assert db.get(StoredEvent, event_id) is not None
    status = kernel.plugins.statuses["test.exploder"]
    assert status.status == "degraded"
    assert "on_event" in status.reason and "subscriber exploded" in status.reason
    assert kernel.plugins.statuses["test.recorder"].status == "active"
    # Later events still reach everyone.
    later = kernel.events.publish(Ping(org_id=3, note="after"))
    assert recorder.ids() == [event_id, later]


def test_publish_without_redis_needs_no_relay(kernel: Kernel, recorder: Recorder) -> None:
    assert kernel.events.relay is None
    kernel.events.start()
    kernel.events.publish(Ping(note="installation-wide"))
    kernel.events.stop()
    assert len(recorder.received) == 1
