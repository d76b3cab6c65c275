"""Waking live streams when an organization has a new event.

A stream (an asyncio task on the server's loop) registers a :class:`Waiter` for
its organization; :meth:`Waiters.notify` is called from any thread (a request
handler's worker thread, the Redis relay thread) after an event is committed and
sets the waiter's :class:`asyncio.Event` on the waiter's own loop. The stream
clears its waiter *before* reading the database, so an event committed after
that read always finds the waiter cleared and wakes it: nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Waiter:
    __slots__ = ("_event", "_loop", "org_id")

    def __init__(self, org_id: int) -> None:
        self.org_id = org_id
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """True when woken, False when ``timeout`` seconds passed first."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def wake(self) -> None:
        # A closed loop raises RuntimeError: its stream is gone already.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._event.set)


class Waiters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_org: dict[int, set[Waiter]] = {}

    def watch(self, org_id: int) -> Waiter:
        """Register a waiter for ``org_id``; call from the stream's event loop."""
        waiter = Waiter(org_id)
        with self._lock:
            self._by_org.setdefault(org_id, set()).add(waiter)
        return waiter

    def unwatch(self, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._by_org.get(waiter.org_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_org[waiter.org_id]

    def notify(self, org_id: int | None) -> None:
        """Wake the streams of ``org_id`` (installation-wide events wake nobody)."""
        if org_id is None:
            return
        with self._lock:
            waiters = list(self._by_org.get(org_id, ()))
        for waiter in waiters:
            waiter.wake()

    def notify_all(self) -> None:
        with self._lock:
            waiters = [w for ws in self._by_org.values() for w in ws]
        for waiter in waiters:
            waiter.wake()

    def count(self) -> int:
        with self._lock:
            return sum(len(ws) for ws in self._by_org.values())
