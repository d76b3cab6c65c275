"""Loopback ports for the servers a test starts in another process.

A test that starts a server in a subprocess (``gakwaya serve``, Caddy, Pebble,
sshd, PostgreSQL) has to name its port before the server binds it. The usual way,
binding port 0 and closing the socket, hands out a port from the kernel's
*ephemeral* range, the range every outgoing connection on the machine also takes
its local port from. Between the close and the server's bind, any client socket
(a database connection, an HTTP request, Docker's API) may be given that port,
and the server then fails with "address already in use". That happened in CI.

:func:`free_port` therefore hands out ports below the ephemeral range, where the
kernel never picks one by itself. Each pytest-xdist worker (``gwN``) has its own
slice, so two workers never race for the same one, and a process walks its slice
in order, so it does not hand out a port twice while a test may still be about to
bind it. Every port is checked free (TCP, and UDP when asked) before it is given.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Iterator
from itertools import count

#: Where the slices start, and how wide each is. 10000-19999 stays clear of the
#: ephemeral range (Linux's default starts at 32768) and of the test suite's
#: ``app_port_range`` slices (20000 and up, one thousand per worker).
SLICE_BASE = 10_000
SLICE_SIZE = 1_000
SLICES = 10

_lock = threading.Lock()
_cursor: Iterator[int] | None = None


def worker_slice() -> range:
    """This process's ports: pytest-xdist worker ``gwN`` gets slice ``N`` (mod 10)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % SLICES if worker.isdigit() else 0
    low = SLICE_BASE + index * SLICE_SIZE
    return range(low, low + SLICE_SIZE)


def _bindable(port: int, udp: bool) -> bool:
    kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if udp else [socket.SOCK_STREAM]
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port(*, udp: bool = False) -> int:
    """A loopback port that is free for TCP (and for UDP too when ``udp``: a DNS
    server binds both), from this process's slice below the ephemeral range."""
    global _cursor
    ports = worker_slice()
    with _lock:
        if _cursor is None:
            # A random start: a run right after another does not begin on the
            # ports the last one left in TIME_WAIT.
            _cursor = count(random.randrange(len(ports)))
        for _ in range(len(ports)):
            port = ports[next(_cursor) % len(ports)]
            if _bindable(port, udp):
                return port
    raise RuntimeError(f"no free loopback port in {ports.start}-{ports.stop - 1}")
