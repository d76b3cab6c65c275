"""Caddy's admin API on loopback: the only way this plugin changes Caddy.

Caddy 2.6 guards concurrent changes with an ETag: ``GET /config/`` answers the
config with ``Etag: "/config/ <hash>"``, and a change sent with that value in
``If-Match`` is refused with 412 when the config changed in between. Caddy 2.6
sends the ETag as an HTTP *trailer* (after a chunked body), which httpx does not
expose, so the read goes through ``h11`` directly, where trailers are plain events.
``POST /load`` ignores ``If-Match`` in 2.6; a whole-config ``POST /config/`` honours
it, so that is how this plugin replaces the config.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import h11
import httpx

from gakwaya_sdk.providers import ProviderError

#: Seconds one admin call may take. A config change returns once Caddy has started the
#: new config (listeners bound); certificates are obtained afterwards, in the background.
TIMEOUT = 30.0


class AdminUnreachable(ProviderError):
    """Nothing answers at the admin address (Caddy is not running)."""


class Admin:
    """Calls to one Caddy's admin API (``host`` is a loopback address)."""

    def __init__(self, host: str, port: int, *, timeout: float = TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        bracketed = f"[{host}]" if ":" in host else host
        self.address = f"{bracketed}:{port}"
        self.url = f"http://{self.address}"

    def _unreachable(self, exc: Exception) -> ProviderError:
        return AdminUnreachable(
            f"Caddy's admin API at {self.address} does not answer ({exc}); is Caddy running? "
            "(gakwaya proxy start runs a managed one)"
        )

    def _client(self) -> httpx.Client:
        # trust_env=False: a proxy configured for the machine's outgoing traffic must
        # never see calls to loopback.
        return httpx.Client(base_url=self.url, timeout=self.timeout, trust_env=False)

    def answers(self, timeout: float = 2.0) -> bool:
        try:
            with httpx.Client(base_url=self.url, timeout=timeout, trust_env=False) as client:
                return client.get("/config/").status_code == 200
        except httpx.HTTPError:
            return False

    def read(self) -> tuple[Any, str]:
        """(config, ETag) of the whole running config."""
        try:
            status, body, etag = self._get_with_trailers("/config/")
        except (OSError, h11.ProtocolError) as exc:
            raise self._unreachable(exc) from None
        if status != 200:
            raise ProviderError(
                f"Caddy's admin API answered {status} to GET /config/: {_reason(body)}"
            )
        try:
            config = json.loads(body) if body.strip() else None
        except ValueError:
            raise ProviderError(
                "Caddy's admin API answered GET /config/ with invalid JSON"
            ) from None
        return config, etag

    def replace(self, config: Any, etag: str) -> bool:
        """Replace the whole config if it is still the one ``etag`` names: True when
        done, False when it changed in between (412). Caddy refusing it (it keeps the
        running config then) raises ProviderError with Caddy's reason."""
        headers = {"If-Match": etag} if etag else {}
        try:
            with self._client() as client:
                response = client.post("/config/", json=config, headers=headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code == 412:
            return False
        if response.status_code != 200:
            raise ProviderError(
                f"Caddy refused the configuration ({response.status_code}): "
                f"{_reason(response.content)}"
            )
        return True

    def stop(self) -> None:
        """Ask Caddy to exit (``POST /stop``)."""
        try:
            with self._client() as client:
                response = client.post("/stop")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code != 200:
            raise ProviderError(
                f"Caddy refused to stop ({response.status_code}): {_reason(response.content)}"
            )

    def upstreams(self) -> list[dict[str, Any]]:
        """``GET /reverse_proxy/upstreams``: every upstream of every reverse proxy,
        with Caddy's request and (passive) failure counters."""
        try:
            with self._client() as client:
                response = client.get("/reverse_proxy/upstreams")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code != 200:
            raise ProviderError(
                f"Caddy answered {response.status_code}: {_reason(response.content)}"
            )
        found = response.json()
        return [u for u in found if isinstance(u, dict)] if isinstance(found, list) else []

    def _get_with_trailers(self, target: str) -> tuple[int, bytes, str]:
        conn = h11.Connection(h11.CLIENT)
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            request = h11.Request(
                method="GET",
                target=target,
                headers=[("Host", self.address), ("Connection", "close")],
            )
            sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
            status, body, etag = 0, bytearray(), ""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    etag = _etag(event.headers) or etag
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    etag = _etag(event.headers) or etag  # the trailer (Caddy 2.6)
                    return status, bytes(body), etag
                elif isinstance(event, h11.ConnectionClosed):
                    raise OSError("connection closed before the end of the answer")


def _etag(headers: Any) -> str:
    for name, value in headers:
        if bytes(name).lower() == b"etag":
            return bytes(value).decode("latin-1")
    return ""


def _reason(body: bytes) -> str:
    """Caddy's ``{"error": "..."}`` message, else the body's start."""
    text = body.decode(errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:2000] or "(no message)"
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return str(payload["error"])[:2000]
    return text[:2000]
