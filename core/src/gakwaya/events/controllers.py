"""``/api/v1/orgs/{org}/events``: the organization's stored events, and a live stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery, HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext
from gakwaya.events import services
from gakwaya.events.schemas import EventEnvelope
from gakwaya.kernel import Kernel
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, parse_cursor

#: Events sent per database read while a stream catches up.
STREAM_BATCH = 100
#: Reconnection delay suggested to EventSource clients, in milliseconds.
RETRY_MS = 3000


@get(
    "/api/v1/orgs/{org:str}/events",
    operation_id="events_list",
    tags=["events"],
    opt={"permission": "events.read"},
    sync_to_thread=True,
)
def events_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    type_name: Annotated[
        str | None,
        QueryParameter(name="type", description="an event type, or a family like app.*"),
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[EventEnvelope]:
    """The organization's stored events, newest first."""
    rows, nxt = services.list_events(
        db,
        current_org.id,
        type_name=services.check_type(type_name),
        limit=limit,
        cursor=parse_cursor(cursor),
    )
    return Page(items=[services.to_envelope(r) for r in rows], next_cursor=nxt)


@get(
    "/api/v1/orgs/{org:str}/events/stream",
    operation_id="events_stream",
    tags=["events"],
    opt={"permission": "events.read"},
    media_type="text/event-stream",
)
async def events_stream(
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    after: Annotated[
        str | None,
        QueryParameter(description="resume after this event id (Last-Event-ID wins)"),
    ] = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(
            name="Last-Event-ID",
            description="resume after this event id (EventSource sends it on reconnect)",
        ),
    ] = None,
) -> ServerSentEvent:
    """A Server-Sent Events stream of the organization's events.

    Each message has ``id`` (the event id), ``event`` (its type) and ``data`` (the
    event as JSON: id, type, org_id, created_at, payload). Resume after an id with
    the ``Last-Event-ID`` header (browsers send it when they reconnect) or
    ``?after=``: stored events after it come first, in order, then live ones.
    Without either, only events from now on. A comment line every 15 seconds
    keeps proxies from closing a quiet stream.
    """
    if last_event_id is not None and last_event_id.strip():
        start = services.parse_event_id("Last-Event-ID", last_event_id)
    else:
        start = services.parse_event_id("after", after)
    return ServerSentEvent(_stream(kernel, current_org.id, start))


def _latest(kernel: Kernel, org_id: int) -> int:
    with kernel.db.session() as db:
        return services.latest_id(db, org_id)


def _after(kernel: Kernel, org_id: int, after: int) -> list[EventEnvelope]:
    with kernel.db.session() as db:
        rows = services.events_after(db, org_id, after, STREAM_BATCH)
        return [services.to_envelope(r) for r in rows]


async def _stream(
    kernel: Kernel, org_id: int, after: int | None
) -> AsyncIterator[ServerSentEventMessage]:
    bus = kernel.events
    # Registered before the first read: an event committed after any read wakes us.
    waiter = bus.waiters.watch(org_id)
    try:
        if after is None:
            after = await anyio.to_thread.run_sync(_latest, kernel, org_id)
        last = after
        yield ServerSentEventMessage(comment="stream open", data=None, retry=RETRY_MS)
        quiet_since = time.monotonic()
        while not bus.closed:
            waiter.clear()
            batch = await anyio.to_thread.run_sync(_after, kernel, org_id, last)
            for envelope in batch:
                yield ServerSentEventMessage(
                    id=envelope.id,
                    event=envelope.type,
                    data=msgspec.json.encode(envelope).decode(),
                )
                last = envelope.id
            if batch:
                quiet_since = time.monotonic()
            if len(batch) == STREAM_BATCH:
                continue
            remaining = bus.stream_keepalive - (time.monotonic() - quiet_since)
            if remaining <= 0:
                yield ServerSentEventMessage(comment="keepalive", data=None)
                quiet_since = time.monotonic()
                continue
            await waiter.wait(remaining)
    finally:
        bus.waiters.unwatch(waiter)
