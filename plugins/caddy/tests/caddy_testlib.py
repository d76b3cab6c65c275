"""Helpers of the Caddy plugin's tests: upstreams and plain HTTP(S) clients."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from gakwaya.testing.ports import free_port

DEADLINE = 60.0


def dead_address() -> str:
    """A loopback port nothing listens on (connections are refused)."""
    return f"127.0.0.1:{free_port()}"


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


class Upstream:
    """An HTTP server in a thread answering its own name; ``health`` is the status of
    ``/healthz``; ``hold`` (an Event) makes ``/slow`` wait until it is set; POST bodies'
    sizes are recorded in ``bodies``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.health = 200
        self.hold = threading.Event()
        self.hits = 0
        self.health_checks = 0
        self.bodies: list[int] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    upstream.health_checks += 1
                    self._answer(upstream.health, b"health")
                    return
                upstream.hits += 1
                if self.path == "/slow":
                    upstream.hold.wait(30)
                self._answer(200, upstream.name.encode())

            def do_POST(self) -> None:
                upstream.hits += 1
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = self._read_chunked()
                else:
                    data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.bodies.append(len(data))
                self._answer(200, f"{upstream.name} got {len(data)}".encode())

            def _read_chunked(self) -> bytes:
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads what it needs from the requests."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class Answer:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:80]!r})"


def request(
    port: int,
    host: str,
    path: str = "/",
    *,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 20,
) -> Answer:
    """One plain HTTP request to 127.0.0.1:``port`` for ``host``, on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            method,
            path,
            body=body,
            headers={"Host": host, "Connection": "close", **(headers or {})},
        )
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def answer_or_error(port: int, host: str, path: str = "/") -> str:
    try:
        answer = request(port, host, path, timeout=10)
    except (OSError, http.client.HTTPException) as exc:
        return f"error: {exc!r}"
    return answer.text if answer.status == 200 else f"status {answer.status}"


def https_request(
    port: int, host: str, roots_pem: str, path: str = "/", timeout: float = 20
) -> tuple[Answer, dict[str, Any]]:
    """GET over HTTPS with SNI ``host``, the served chain verified against ``roots_pem``
    (and the name against ``host``): the answer and the peer certificate."""
    context = ssl.create_default_context(cadata=roots_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        peer = tls.getpeercert()
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return Answer(status, headers, body), peer or {}


def admin_get(address: str, path: str = "/config/") -> Any:
    with httpx.Client(base_url=f"http://{address}", trust_env=False, timeout=10) as client:
        response = client.get(path)
        assert response.status_code == 200, response.text
        return json.loads(response.content) if response.content.strip() else None


def admin_call(address: str, method: str, path: str, body: Any = None) -> httpx.Response:
    with httpx.Client(base_url=f"http://{address}", trust_env=False, timeout=30) as client:
        return client.request(method, path, json=body)
