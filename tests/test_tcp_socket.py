"""``serve --workers``: the shared socket says it is TCP, so asyncio sets TCP_NODELAY on
each accepted connection (without it, kept-alive answers wait for delayed ACKs)."""

from __future__ import annotations

import asyncio
import socket

from gakwaya.cli._tcp import TcpConfig
from tests.services import free_port


def test_shared_socket_is_tcp_and_connections_get_nodelay() -> None:
    config = TcpConfig(
        "gakwaya.app:create_app", factory=True, workers=2, host="127.0.0.1", port=free_port()
    )
    sock = config.bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.get_inheritable()

        async def accept_one() -> int:
            nodelay: list[int] = []

            def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                conn = writer.get_extra_info("socket")
                nodelay.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                writer.close()

            sock.listen()
            server = await asyncio.start_server(on_connect, sock=sock)
            async with server:
                _, w = await asyncio.open_connection(*sock.getsockname())
                for _ in range(100):
                    if nodelay:
                        break
                    await asyncio.sleep(0.01)
                w.close()
            return nodelay[0]

        assert asyncio.run(accept_one()) != 0
    finally:
        sock.close()
