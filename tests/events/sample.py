"""Event types and subscribers for the event tests, loaded as plugins.

``sample`` itself is a plugin module (it registers the types); :class:`Recorder`
and :class:`Exploder` are plugin objects, one per kernel, so two kernels in one
test process keep their own records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event


class Ping(Event, tag="test.ping"):
    note: str
    #: The peer process answers a ping that asks for it with a Pong.
    reply: bool = False


class Pong(Event, tag="test.pong"):
    note: str


class Boom(Event, tag="test.boom"):
    pass


@hookimpl
def register_event_types() -> Sequence[type[Event]]:
    return [Ping, Pong, Boom]


class Recorder:
    """Remembers every event delivered to this process's subscribers."""

    def __init__(self) -> None:
        self.received: list[tuple[Event, int]] = []
        self._cond = threading.Condition()

    @hookimpl
    def on_event(self, event: Event, event_id: int) -> None:
        with self._cond:
            self.received.append((event, event_id))
            self._cond.notify_all()

    def ids(self) -> list[int]:
        with self._cond:
            return [i for _, i in self.received]

    def wait_for(
        self, predicate: Callable[[list[tuple[Event, int]]], bool], timeout: float = 20.0
    ) -> list[tuple[Event, int]]:
        """Wait (bounded) until ``predicate(received)``; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not received in {timeout}s; got {self.received!r}")
                self._cond.wait(left)
            return list(self.received)


class Exploder:
    """A subscriber that fails on Boom events."""

    @hookimpl
    def on_event(self, event: Event) -> None:
        if isinstance(event, Boom):
            raise RuntimeError("subscriber exploded")
