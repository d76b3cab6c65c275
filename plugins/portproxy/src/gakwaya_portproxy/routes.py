"""The routes file: the port forwarder's whole desired state, shared by the panel's
processes on one host.

A worker applying a deployment's routes and every serving process forwarding them
meet here, and nowhere else: the file is written whole (a temporary file renamed
over it), so a reader sees the old set or the new one, never half of each. Every
value is checked before it is written and again when read, since the file is also
an operator's to edit.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gakwaya_sdk.providers import ProviderError, Route

PLUGIN = "gakwaya-portproxy"
ROUTES_FILE = "routes.json"
FORMAT_VERSION = 1

#: Ports a route may serve: unprivileged ones, so the panel never needs root for them.
MIN_PORT = 1024
MAX_PORT = 65535

#: An app key (``a12``): what the kernel passes; anything else is not ours to serve.
APP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
#: ``host:port`` with an IPv4 address or an RFC 1123 host name, and a port without
#: sign or leading zero. No IPv6 literal, no user-info, no path: an upstream is only
#: ever a container's published port.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
UPSTREAM_PATTERN = rf"^(?P<host>{_LABEL}(?:\.{_LABEL})*):(?P<port>[1-9][0-9]{{0,4}})$"
MAX_UPSTREAMS = 64

_APP = re.compile(APP_PATTERN)
_UPSTREAM = re.compile(UPSTREAM_PATTERN)
_DOTTED = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


def _refuse(where: str, rule: str) -> ProviderError:
    return ProviderError(f"{where}: {rule}")


def split_upstream(value: object, where: str = "upstream") -> tuple[str, int]:
    """(host, port) of a valid upstream, else ProviderError naming ``where`` and the rule."""
    if not isinstance(value, str):
        raise _refuse(where, f"{value!r} must be a string 'host:port'")
    match = _UPSTREAM.fullmatch(value)
    if match is None or len(match["host"]) > 253:
        raise _refuse(
            where,
            f"{value!r} must be 'host:port' with an IPv4 address or a host name "
            "(letters, digits, '-' and '.') and a port",
        )
    host, port = match["host"], int(match["port"])
    if _DOTTED.fullmatch(host):
        # All digits and dots: only a real dotted-quad IPv4 address, never "1.2.3" or
        # "999.0.0.1", which resolvers read in surprising ways.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _refuse(where, f"{value!r}: {host!r} is not an IPv4 address") from None
    if not 1 <= port <= MAX_PORT:
        raise _refuse(where, f"{value!r}: the port of host:port must be between 1 and {MAX_PORT}")
    return host, port


def check_route(route: Route) -> None:
    """ProviderError naming the route and the rule it breaks."""
    where = f"route of app {route.app!r}"
    if not isinstance(route.app, str) or not _APP.fullmatch(route.app):
        raise _refuse(
            where, "app must be 1-100 letters, digits, '_', '.' or '-', starting alphanumeric"
        )
    port = route.port
    if isinstance(port, bool) or not isinstance(port, int) or not MIN_PORT <= port <= MAX_PORT:
        raise _refuse(where, f"port {port!r} must be an integer between {MIN_PORT} and {MAX_PORT}")
    if isinstance(route.upstreams, str | bytes):
        raise _refuse(where, "upstreams must be a list of 'host:port'")
    if len(route.upstreams) > MAX_UPSTREAMS:
        raise _refuse(where, f"at most {MAX_UPSTREAMS} upstreams")
    for upstream in route.upstreams:
        split_upstream(upstream, f"{where}, upstream")


def port_routes(routes: Iterable[Route]) -> list[Route]:
    """The routes this proxy serves (those with a port), checked, one per port, sorted."""
    kept: dict[int, Route] = {}
    for route in routes:
        if not isinstance(route, Route):
            raise ProviderError(f"{route!r} is not a gakwaya_sdk.providers.Route")
        if route.port is None:
            continue
        check_route(route)
        assert route.port is not None
        other = kept.get(route.port)
        if other is not None:
            raise _refuse(
                f"route of app {route.app!r}",
                f"port {route.port} is already routed to app {other.app!r}",
            )
        # Only what a port forwarder serves: a domain (and its TLS) is another proxy's.
        kept[route.port] = Route(app=route.app, upstreams=list(route.upstreams), port=route.port)
    return [kept[port] for port in sorted(kept)]


def check_bind_address(value: object) -> str:
    """The ``bind_address`` setting, checked: an IPv4 or IPv6 address, nothing else
    (a host name would make the listening address depend on a resolver)."""
    if not isinstance(value, str):
        raise ProviderError(f"setting bind_address: {value!r} must be an IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ProviderError(
            f"setting bind_address: {value!r} must be an IP address such as 0.0.0.0, "
            "127.0.0.1 or ::"
        ) from None


def check_bindable(bind_address: str, routes: Sequence[Route]) -> None:
    """ProviderError when another program holds a route's port.

    Our own listeners set ``SO_REUSEPORT`` as this probe does, so a port the panel
    already serves passes; one held by anything else fails here, before the file
    changes, rather than silently never being served."""
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    for route in routes:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind((bind_address, route.port))
            except OSError as exc:
                raise _refuse(
                    f"route of app {route.app!r}",
                    f"port {route.port} on {bind_address} cannot be used: "
                    f"{exc.strerror or exc} (another program holds it?)",
                ) from None


def encode(routes: Sequence[Route]) -> bytes:
    payload = {
        "version": FORMAT_VERSION,
        "routes": [{"app": r.app, "port": r.port, "upstreams": list(r.upstreams)} for r in routes],
    }
    return (json.dumps(payload, indent=2) + "\n").encode()


def decode(data: bytes, where: str) -> list[Route]:
    """Routes of a file's bytes, checked as :func:`port_routes` does."""
    try:
        payload: Any = json.loads(data)
    except ValueError as exc:
        raise ProviderError(f"{where}: not JSON ({exc})") from None
    if not isinstance(payload, dict) or payload.get("version") != FORMAT_VERSION:
        raise ProviderError(f"{where}: expected an object with version {FORMAT_VERSION}")
    items = payload.get("routes")
    if not isinstance(items, list):
        raise ProviderError(f"{where}: 'routes' must be a list")
    routes: list[Route] = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"app", "port", "upstreams"}:
            raise ProviderError(f"{where}: each route has exactly app, port and upstreams")
        upstreams = item["upstreams"]
        if not isinstance(upstreams, list):
            raise ProviderError(f"{where}: route of app {item['app']!r}: upstreams must be a list")
        routes.append(Route(app=item["app"], port=item["port"], upstreams=upstreams))
    return port_routes(routes)


def read(path: Path) -> list[Route]:
    """What the file says; no file means no routes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ProviderError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode(data, str(path))


def write(path: Path, routes: Sequence[Route]) -> None:
    """Replace the file whole: a reader (another process) never sees half of it."""
    data = encode(routes)
    fd, temp = tempfile.mkstemp(prefix=".routes-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def signature(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is replaced (a new inode) or rewritten in place."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
