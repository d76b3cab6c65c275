"""Health probes, made from the panel's host to the container's address.

The panel reaches a container on its organization's bridge network by its IP (the
host routes to every Docker bridge); nothing is published on a host port. Each probe
returns None when healthy, else a short reason for the user.
"""

from __future__ import annotations

import errno
import http.client
import socket

KINDS = ("tcp", "http", "none")


def probe(kind: str, ip: str, port: int, path: str, timeout: float) -> str | None:
    if kind == "http":
        return probe_http(ip, port, path, timeout)
    return probe_tcp(ip, port, timeout)


def probe_tcp(ip: str, port: int, timeout: float) -> str | None:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return None
    except OSError as exc:
        return _reason(exc)


def probe_http(ip: str, port: int, path: str, timeout: float) -> str | None:
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path or "/", headers={"User-Agent": "gakwaya-health-check"})
        response = conn.getresponse()
        response.read(65536)
        if 200 <= response.status < 400:
            return None
        return f"GET {path} answered HTTP {response.status}"
    except (http.client.HTTPException, ValueError) as exc:
        return f"GET {path}: invalid HTTP answer ({type(exc).__name__})"
    except OSError as exc:
        return _reason(exc)
    finally:
        conn.close()


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "address unreachable from the panel's host"
    return exc.strerror or str(exc) or type(exc).__name__
