"""uvicorn's multi-process mode on a socket that keeps TCP_NODELAY.

uvicorn binds the shared socket without naming the TCP protocol; asyncio then does
not set TCP_NODELAY on the accepted connections, and every answer after the first on a
kept-alive connection waits for a delayed ACK (about 40 ms). The socket handed to the
processes here says it is TCP. A module of its own: the config is pickled to each
process, so its class must be importable.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


class TcpConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return sock
        tcp = socket.socket(
            sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=os.dup(sock.fileno())
        )
        sock.close()
        tcp.set_inheritable(True)
        return tcp


def run_processes(app: str, workers: int, options: dict[str, Any]) -> None:
    config = TcpConfig(app, factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
