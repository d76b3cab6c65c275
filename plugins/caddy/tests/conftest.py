"""A real Caddy (Debian's 2.6.2) per test, started and stopped through the plugin's own
ManagedProxy methods, on free loopback ports; upstreams are small HTTP servers in
threads. Every Caddy a test starts is gone when the test ends (checked)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from caddy_testlib import Upstream, free_port

from gakwaya_caddy.plugin import AcmeCertificates, CaddyProxy
from gakwaya_caddy.process import _is_caddy, running_pid
from gakwaya_sdk.providers import ProviderError


def _local_settings() -> dict[str, Any]:
    return {
        "admin_address": f"127.0.0.1:{free_port()}",
        "http_port": free_port(),
        "https_port": free_port(),
        # Never Let's Encrypt from a test: a CA nobody answers at (issuance just fails).
        "acme_ca": f"https://127.0.0.1:{free_port()}/dir",
    }


class Caddies:
    """Makes Caddy proxies; remembers every process started, to stop it afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[CaddyProxy] = []
        self.pids: set[int] = set()
        self.log: list[str] = []

    def make(
        self,
        settings: dict[str, Any] | None = None,
        *,
        dns: list[Any] | None = None,
        start: bool = True,
        name: str = "caddy",
    ) -> CaddyProxy:
        for attempt in range(3):
            values = {**_local_settings(), **(settings or {})}
            proxy = CaddyProxy(
                settings=values, data_dir=self.tmp_path / name, dns_providers=lambda: dns or []
            )
            proxy.values = values  # type: ignore[attr-defined]  # the live dict, for tests
            self.made.append(proxy)
            if not start:
                return proxy
            try:
                self.start(proxy)
            except ProviderError as exc:
                # A free port taken by another program in the meantime: new ports.
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
                continue
            return proxy
        raise AssertionError("unreachable")

    def start(self, proxy: CaddyProxy) -> int:
        proxy.start(log=self.log.append)
        pid = running_pid(proxy.settings())
        assert pid is not None
        self.pids.add(pid)
        return pid

    def certs(self, proxy: CaddyProxy) -> AcmeCertificates:
        return AcmeCertificates(
            settings=proxy.values,  # type: ignore[attr-defined]
            data_dir=proxy.settings().data_dir,
        )

    def close(self) -> None:
        for proxy in self.made:
            with contextlib.suppress(Exception):
                proxy.stop()
        left = [pid for pid in self.pids if _is_caddy(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"Caddy processes left running after the test: {left}"


@pytest.fixture
def caddies(tmp_path: Path) -> Iterator[Caddies]:
    made = Caddies(tmp_path)
    yield made
    made.close()


@pytest.fixture
def caddy(caddies: Caddies) -> CaddyProxy:
    """A running managed Caddy with local settings (``caddy.values`` can be changed)."""
    return caddies.make()


@pytest.fixture
def upstreams() -> Iterator[Callable[..., Upstream]]:
    started: list[Upstream] = []

    def make(name: str, **kwargs: Any) -> Upstream:
        upstream = Upstream(name, **kwargs)
        started.append(upstream)
        return upstream

    yield make
    for upstream in started:
        upstream.stop()
