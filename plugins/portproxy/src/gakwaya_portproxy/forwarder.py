"""The forwarder: listens on each routed port and relays TCP to the app's instances.

It runs in every serving process (``register_services``), on its own thread and
asyncio loop, so it never waits on the panel's requests nor they on it. Several
serving processes listen on the same ports (``SO_REUSEPORT``): the kernel spreads
connections over them, and a process restarting never leaves a port unserved.

Desired state is the routes file (:mod:`gakwaya_portproxy.routes`). A change made
in this process is pushed at once (:meth:`PortProxyService.reload`); one made by
another process (a ``gakwaya worker`` running a deployment) is seen by polling the
file's identity. A switch only changes where *new* connections go: a port still
routed keeps its listener (it never refuses a connection during a deploy), and
connections already open finish on the instance they started on (drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from gakwaya_portproxy.routes import check_bind_address, read, signature, split_upstream
from gakwaya_sdk.providers import ProviderError, Route

log = logging.getLogger("gakwaya_portproxy")

#: Seconds between two looks at the routes file (other processes' changes).
POLL_INTERVAL = 0.5
#: Seconds to wait for an upstream to accept before trying the next one.
CONNECT_TIMEOUT = 5.0
#: Polls between two attempts to listen on a port that could not be bound.
BIND_RETRY_POLLS = 10
CHUNK = 65536

_registry_lock = threading.Lock()
#: Routes file → the services of this process forwarding it (``apply`` pushes to them).
_registry: dict[Path, set[PortProxyService]] = {}


def running_services(routes_file: Path) -> list[PortProxyService]:
    with _registry_lock:
        return list(_registry.get(routes_file.resolve(), ()))


class _Listener:
    """One routed port: its server and where new connections go now."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.app = ""
        self.upstreams: list[tuple[str, int]] = []
        self.server: asyncio.Server | None = None
        self.turn = 0
        self.bind_error = ""
        self.polls_since_attempt = 0

    def order(self) -> list[tuple[str, int]]:
        """The upstreams starting with the next one's turn (round robin)."""
        upstreams = self.upstreams
        if not upstreams:
            return []
        start = self.turn % len(upstreams)
        self.turn += 1
        return upstreams[start:] + upstreams[:start]


class PortProxyService:
    """The forwarder as a :class:`gakwaya_sdk.services.Service`."""

    name = "portproxy"

    def __init__(
        self,
        *,
        routes_file: Path | Callable[[], Path],
        bind_address: str | Callable[[], object] = "0.0.0.0",  # noqa: S104 (the setting's default)
        poll_interval: float = POLL_INTERVAL,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._routes_file_source = routes_file
        self._bind_source = bind_address
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.routes_file: Path | None = None
        self.bind_address = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._listeners: dict[int, _Listener] = {}
        self._connections: set[asyncio.Task[None]] = set()
        self._seen: tuple[int, int, int] | None = None
        self._reload_lock: asyncio.Lock | None = None

    # Service -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        source = self._bind_source
        # Checked here, where a bad value stops this service with a reason the panel
        # shows (the plugin degraded), instead of a listener failing on every port.
        self.bind_address = check_bind_address(source() if callable(source) else source)
        path_source = self._routes_file_source
        self.routes_file = (path_source() if callable(path_source) else path_source).resolve()
        self._loop = asyncio.new_event_loop()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="gakwaya-portproxy", daemon=True)
        self._thread.start()
        # Serve the routes already in the file (a restarted panel) before returning,
        # briefly: binding a few sockets takes milliseconds.
        self._ready.wait(timeout=10)
        with _registry_lock:
            _registry.setdefault(self.routes_file, set()).add(self)

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self.routes_file is not None:
            with _registry_lock:
                services = _registry.get(self.routes_file)
                if services is not None:
                    services.discard(self)
                    if not services:
                        del _registry[self.routes_file]
        stopping = self._stopping
        if stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        if thread.is_alive():
            log.error("portproxy: the forwarder thread did not stop within 10 s")
        self._thread = None

    # Control from other threads ------------------------------------------------------

    def reload(self, timeout: float = 10.0) -> None:
        """Read the routes file now and converge; returns once new connections go where
        the file says (``apply`` in this process relies on it)."""
        loop = self._loop
        if loop is None or not loop.is_running() or self._stopping is None:
            return
        if threading.current_thread() is self._thread:
            loop.create_task(self._reload())
            return
        future = asyncio.run_coroutine_threadsafe(self._reload(), loop)
        try:
            future.result(timeout)
        except FutureTimeout:
            log.warning("portproxy: reload did not finish within %s s", timeout)

    def listening(self) -> dict[int, str]:
        """Port → app of the ports this process accepts connections on now."""
        return {p: lst.app for p, lst in list(self._listeners.items()) if lst.server is not None}

    # The loop ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("portproxy: the forwarder stopped")
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        try:
            await self._reload()
        finally:
            self._ready.set()
        watcher = asyncio.create_task(self._watch())
        try:
            await self._stopping.wait()
        finally:
            watcher.cancel()
            await self._shutdown()

    async def _watch(self) -> None:
        assert self.routes_file is not None
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                if signature(self.routes_file) != self._seen:
                    await self._reload()
                else:
                    await self._retry_binds()
            except Exception:
                # Never let one bad turn end the watch: the ports would stop following.
                log.exception("portproxy: watching %s failed", self.routes_file)

    async def _reload(self) -> None:
        assert self.routes_file is not None and self._reload_lock is not None
        async with self._reload_lock:
            seen = signature(self.routes_file)
            try:
                routes = read(self.routes_file)
            except ProviderError as exc:
                # A broken file (an operator's edit): keep serving what we serve.
                if seen != self._seen:
                    log.error("portproxy: %s; the current routes keep serving", exc)
                self._seen = seen
                return
            self._seen = seen
            await self._converge(routes)

    async def _converge(self, routes: list[Route]) -> None:
        wanted = {route.port: route for route in routes if route.port is not None}
        for port in [p for p in self._listeners if p not in wanted]:
            listener = self._listeners.pop(port)
            if listener.server is not None:
                # Stops accepting; connections already open finish on their own.
                listener.server.close()
                log.info("portproxy: port %s closed (app %s)", port, listener.app)
        for port, route in wanted.items():
            listener = self._listeners.get(port) or _Listener(port)
            self._listeners[port] = listener
            upstreams = [split_upstream(u) for u in route.upstreams]
            if upstreams != listener.upstreams or route.app != listener.app:
                # Only new connections see this: open ones keep their upstream.
                listener.app = route.app
                listener.upstreams = upstreams
                listener.turn = 0
                log.info(
                    "portproxy: port %s (app %s) -> %s",
                    port,
                    route.app,
                    ", ".join(route.upstreams) or "nothing",
                )
            if listener.server is None:
                await self._listen(listener)

    async def _listen(self, listener: _Listener) -> None:
        listener.polls_since_attempt = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # The connection's task is asyncio's: a cancellation (our shutdown) ending it
            # would be logged by asyncio as an error, so it ends here, quietly.
            with contextlib.suppress(asyncio.CancelledError):
                await self._connection(listener, reader, writer)

        try:
            listener.server = await asyncio.start_server(
                handle, host=self.bind_address, port=listener.port, reuse_port=True
            )
        except OSError as exc:
            error = exc.strerror or str(exc)
            if error != listener.bind_error:
                log.error(
                    "portproxy: cannot listen on %s:%s for app %s: %s (retrying)",
                    self.bind_address,
                    listener.port,
                    listener.app,
                    error,
                )
            listener.bind_error = error
            return
        listener.bind_error = ""
        log.info("portproxy: listening on %s:%s", self.bind_address, listener.port)

    async def _retry_binds(self) -> None:
        for listener in list(self._listeners.values()):
            if listener.server is None:
                listener.polls_since_attempt += 1
                if listener.polls_since_attempt >= BIND_RETRY_POLLS:
                    await self._listen(listener)

    async def _shutdown(self) -> None:
        for listener in self._listeners.values():
            if listener.server is not None:
                listener.server.close()
        self._listeners.clear()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    # One connection ------------------------------------------------------------------

    async def _connection(
        self, listener: _Listener, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for host, port in listener.order():
                try:
                    upstream = await asyncio.wait_for(
                        asyncio.open_connection(host, port), self.connect_timeout
                    )
                except (OSError, TimeoutError):
                    continue  # refused, unreachable or silent: the next one
                break
            if upstream is None:
                return  # nobody answers: the client sees the connection close
            await _relay(client_r, client_w, *upstream)
        except (OSError, asyncio.IncompleteReadError):
            pass  # a side reset: both are closed below
        finally:
            self._connections.discard(task)
            client_w.close()
            if upstream is not None:
                upstream[1].close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    # Half-close: the other side may still answer (a request sent, then EOF).
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


async def _relay(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream_r: asyncio.StreamReader,
    upstream_w: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both sides are done, or either fails."""
    tasks = {
        asyncio.create_task(_copy(client_r, upstream_w)),
        asyncio.create_task(_copy(upstream_r, client_w)),
    }
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # re-raise a side's error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
