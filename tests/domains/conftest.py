"""The domains tests' panel: the test doubles of plugins in place of Docker and the
port proxy, a base domain and server address for DNS records, and the session's
challtestsrv as the DNS server every TXT lookup asks (never the real DNS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from tests.domains.doubles import Doubles

BASE = "apps.example.test"
IPV4 = "203.0.113.10"
#: What the workspace installs that the doubles stand in for here.
REPLACED = ["gakwaya-docker", "gakwaya-portproxy", "gakwaya-caddy"]


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    """Parametrize this in a test to change some settings."""
    return {}


@pytest.fixture
def domain_settings(challtestsrv: Any, extra_settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "proxy_base_domain": BASE,
        "server_ipv4": IPV4,
        "dns_resolver": challtestsrv.dns_address,
        "disabled_plugins": REPLACED,
        # The reconciler service runs in the client's lifespan: keep it to its start.
        "reconcile_interval": 3600,
        **extra_settings,
    }


@pytest.fixture
def settings_overrides(domain_settings: dict[str, Any]) -> dict[str, Any]:
    return domain_settings


@pytest.fixture
def with_dns() -> bool:
    """Whether a ``dns`` provider is active (it allows wildcard domains)."""
    return False


@pytest.fixture
def refusing_proxy() -> bool:
    """Whether a second proxy refusing every configuration is active (before the
    recording one)."""
    return False


@pytest.fixture
def doubles() -> Doubles:
    return Doubles()


@pytest.fixture
def kernel(
    settings: Settings, doubles: Doubles, with_dns: bool, refusing_proxy: bool
) -> Iterator[Kernel]:
    plugin = doubles.plugin(with_dns=with_dns, refusing=refusing_proxy)
    k = Kernel.create(settings, extra_plugins=[("domain-test-doubles", plugin)])
    yield k
    k.close()


@pytest.fixture(autouse=True)
def _reconciler_start_up_pass_done(request: pytest.FixtureRequest) -> None:
    """With the client's lifespan running, wait for the reconciler service's start-up
    pass: a test counting what a reconcile pass asks (certificate polls, events) must
    not have a late start-up pass, starved of CPU, add to its counts."""
    if "client" not in request.fixturenames:
        return
    request.getfixturevalue("client")
    kernel: Kernel = request.getfixturevalue("kernel")
    for _, service in kernel._services:
        done = getattr(service, "started_pass", None)
        if done is not None:
            assert done.wait(60), "the reconciler's start-up pass did not finish"
