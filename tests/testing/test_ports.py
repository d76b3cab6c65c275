"""``gakwaya.testing.ports.free_port``: ports a server in another process can bind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gakwaya.testing import ports
from gakwaya.testing.ports import free_port, worker_slice


def ephemeral_range() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_ports_are_below_the_ephemeral_range_and_in_this_workers_slice() -> None:
    given = [free_port() for _ in range(50)]
    ephemeral = ephemeral_range()
    assert not [p for p in given if p in ephemeral]
    assert all(p in worker_slice() for p in given)
    # A process does not hand the same port out again before walking its slice.
    assert len(set(given)) == len(given)


def test_workers_have_disjoint_slices_clear_of_the_app_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import worker_port_range

    slices = []
    for n in range(10):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{n}")
        slices.append(set(worker_slice()))
        low, high = (int(x) for x in worker_port_range().split("-"))
        assert not slices[-1] & set(range(low, high + 1))
    assert sum(len(s) for s in slices) == len(set().union(*slices))


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    nxt = free_port()
    # Rewind the cursor so the next port would be ``nxt`` again, then hold it.
    monkeypatch.setattr(ports, "_cursor", iter([nxt - worker_slice().start, *range(10**6)]))
    with socket.socket() as held:
        held.bind(("127.0.0.1", nxt))
        held.listen()
        assert free_port() != nxt


def test_udp_asks_for_both_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    nxt = free_port()
    monkeypatch.setattr(ports, "_cursor", iter([nxt - worker_slice().start, *range(10**6)]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", nxt))
        port = free_port(udp=True)
        assert port != nxt
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.bind(("127.0.0.1", port))
