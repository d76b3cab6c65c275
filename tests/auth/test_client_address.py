"""Which address the kernel believes: the peer's, unless the peer is a trusted proxy."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import Headers

from gakwaya.auth.middleware import _Trusted, client_address


def scope(peer: str) -> Any:
    return {"type": "http", "client": (peer, 51234)}


def test_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    headers = Headers({"x-forwarded-for": "203.0.113.9"})
    assert client_address(scope("198.51.100.7"), headers, _Trusted([])) == "198.51.100.7"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    headers = Headers({"x-forwarded-for": "203.0.113.9"})
    trusted = _Trusted(["127.0.0.1/32"])
    assert client_address(scope("198.51.100.7"), headers, trusted) == "198.51.100.7"


def test_trusted_proxy_gives_the_client() -> None:
    headers = Headers({"x-forwarded-for": "203.0.113.9"})
    trusted = _Trusted(["127.0.0.1/32"])
    assert client_address(scope("127.0.0.1"), headers, trusted) == "203.0.113.9"


def test_a_forged_leftmost_hop_is_not_believed() -> None:
    # The client sent "X-Forwarded-For: 10.0.0.1" itself; the proxy appended its peer.
    headers = Headers({"x-forwarded-for": "10.0.0.1, 203.0.113.9"})
    trusted = _Trusted(["127.0.0.1/32"])
    assert client_address(scope("127.0.0.1"), headers, trusted) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_walked() -> None:
    headers = Headers({"x-forwarded-for": "203.0.113.9, 10.0.0.5"})
    trusted = _Trusted(["127.0.0.1/32", "10.0.0.0/8"])
    assert client_address(scope("127.0.0.1"), headers, trusted) == "203.0.113.9"


def test_garbage_in_the_header_falls_back_to_the_peer() -> None:
    headers = Headers({"x-forwarded-for": "$(touch /tmp/x); `id`"})
    trusted = _Trusted(["127.0.0.1/32"])
    assert client_address(scope("127.0.0.1"), headers, trusted) == "127.0.0.1"
