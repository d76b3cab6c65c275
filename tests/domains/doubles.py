"""Test doubles of *plugins* (the extension point), registered in the test's panel:
a runtime reporting the instances a test gives it, a proxy recording the routes it is
given, a certificate provider answering given states, and a DNS provider (whose mere
presence allows wildcard domains). The kernel code under test is the real one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.providers import (
    CertificateStatus,
    ContainerSpec,
    ImageInfo,
    Instance,
    InstanceStats,
    ProviderError,
    Route,
)


class GivenRuntime:
    capability = "runtime:given"

    def __init__(self) -> None:
        self.running: list[Instance] = []

    def start(self, *, spec: ContainerSpec, log: Any, cancelled: Any = None) -> list[Instance]:
        return []

    def prepare_image(self, *, image: str, log: Any, cancelled: Any = None) -> str:
        return image

    def remove(self, *, instance_ids: Sequence[str], drain_seconds: float = 0) -> None:
        self.running = [i for i in self.running if i.id not in instance_ids]

    def stop(self, *, instance_ids: Sequence[str], timeout: float = 10) -> None:
        return None

    def resume(self, *, instance_ids: Sequence[str]) -> None:
        return None

    def restart(self, *, instance_ids: Sequence[str], timeout: float = 10) -> None:
        return None

    def instances(self, *, app: str | None = None) -> list[Instance]:
        return [i for i in self.running if app is None or i.app == app]

    def logs(
        self, *, instance_ids: Sequence[str], tail: int = 100, follow: bool = False
    ) -> Iterator[str]:
        return iter(())

    def stats(self, *, instance_ids: Sequence[str]) -> list[InstanceStats]:
        return []

    def images(self, *, tag_prefix: str) -> list[ImageInfo]:
        return []

    def remove_image(self, *, image: str) -> None:
        return None


class RecordingProxy:
    """An HTTP proxy: keeps the domain routes of each ``apply``."""

    capability = "proxy:recorder"

    def __init__(self) -> None:
        self.applied: list[list[Route]] = []

    def apply(self, *, routes: Sequence[Route]) -> None:
        self.applied.append([r for r in routes if r.domain])

    def routes(self) -> list[Route]:
        return list(self.applied[-1]) if self.applied else []

    @property
    def domains(self) -> list[str]:
        return sorted(r.domain for r in self.routes())


class RefusingProxy:
    """A proxy that refuses every configuration (Caddy down, or a config it rejects)."""

    capability = "proxy:refusing"

    def apply(self, *, routes: Sequence[Route]) -> None:
        raise ProviderError("the admin API refused the configuration: test")

    def routes(self) -> list[Route]:
        return []


class GivenCerts:
    capability = "certs:given"

    def __init__(self) -> None:
        self.states: dict[str, CertificateStatus] = {}
        self.asked: list[list[str]] = []

    def status(self, *, domains: Sequence[str]) -> list[CertificateStatus]:
        self.asked.append(list(domains))
        return [self.states.get(d, CertificateStatus(domain=d, state="pending")) for d in domains]


class TestDns:
    capability = "dns:test"

    def acme_dns_challenge(self, *, domain: str) -> Mapping[str, Any]:
        return {"provider": {"name": "test"}}


@dataclass
class Doubles:
    runtime: GivenRuntime = field(default_factory=GivenRuntime)
    proxy: RecordingProxy = field(default_factory=RecordingProxy)
    certs: GivenCerts = field(default_factory=GivenCerts)
    dns: TestDns = field(default_factory=TestDns)

    def plugin(self, *, with_dns: bool, refusing: bool = False) -> object:
        providers: list[object] = [self.runtime, self.proxy, self.certs]
        if refusing:
            providers.insert(1, RefusingProxy())
        if with_dns:
            providers.append(self.dns)

        class Plugin:
            MANIFEST = {
                "name": "domain-test-doubles",
                "version": "1.0",
                "core_api": ">=0.1,<0.2",
                "provides": [str(p.capability) for p in providers],  # type: ignore[attr-defined]
            }

            @hookimpl
            def register_providers(self) -> Sequence[object]:
                return providers

        return Plugin()
