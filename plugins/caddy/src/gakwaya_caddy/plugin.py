"""Hook implementations of gakwaya-caddy: the ``proxy:caddy`` and ``certs:acme``
providers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gakwaya_caddy import config as caddy_config, process
from gakwaya_caddy.admin import Admin, AdminUnreachable
from gakwaya_caddy.certs import status as certificate_status
from gakwaya_caddy.settings import PLUGIN, CaddySettings, load
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel
from gakwaya_sdk.providers import CertificateStatus, LogFn, ProviderError, Route

SettingsSource = Callable[[], Mapping[str, Any]]
DnsSource = Callable[[], Sequence[Any]]


class _Base:
    def __init__(
        self,
        *,
        settings: Mapping[str, Any] | SettingsSource,
        data_dir: Path | Callable[[], Path],
        dns_providers: DnsSource = lambda: [],
    ) -> None:
        self._settings = settings
        self._data_dir = data_dir
        self._dns_providers = dns_providers

    def settings(self) -> CaddySettings:
        """The current settings, checked (ProviderError naming a bad one)."""
        values = self._settings() if callable(self._settings) else self._settings
        data_dir = self._data_dir() if callable(self._data_dir) else self._data_dir
        return load(values, data_dir)

    def admin(self, settings: CaddySettings | None = None) -> Admin:
        s = settings or self.settings()
        return Admin(s.admin_host, s.admin_port)

    def dns_challenge(self) -> Callable[[str], Mapping[str, Any]] | None:
        """The active DNS provider's DNS-01 configuration (wildcards), or None."""
        providers = list(self._dns_providers())
        if not providers:
            return None
        provider = providers[0]

        def challenge(domain: str) -> Mapping[str, Any]:
            found = provider.acme_dns_challenge(domain=domain)
            if not isinstance(found, Mapping):
                raise ProviderError(
                    f"{provider.capability}: acme_dns_challenge({domain!r}) "
                    "did not return a mapping"
                )
            return found

        return challenge


class CaddyProxy(_Base):
    """Serves each app's domains through a Caddy driven by its admin API.

    ``apply`` sends the whole config at once, conditional on the config it read (If-Match),
    so Caddy either runs all of it or keeps what it ran; ``routes`` reads Caddy's live
    config back, which is how the reconciler notices a restarted or hand-edited Caddy.
    Runs wherever the pipeline runs (a worker, the CLI): the admin API is shared by all.
    """

    capability = "proxy:caddy"

    def apply(self, *, routes: Sequence[Route]) -> None:
        # Every check before the first call to Caddy: a refusal changes nothing.
        settings = self.settings()
        challenge = self.dns_challenge()
        kept = caddy_config.domain_routes(routes, dns_challenge=challenge)
        parts = caddy_config.build(kept, settings, dns_challenge=challenge)
        admin = self.admin(settings)
        for attempt in range(2):
            try:
                live, etag = admin.read()
            except AdminUnreachable:
                if not kept:
                    return  # nothing to serve, and a Caddy that does not run serves nothing
                raise
            wanted = caddy_config.merge(live, parts, settings)
            if wanted == live:
                return
            self._prepare(settings)
            if admin.replace(wanted, etag):
                return
            if attempt == 1:
                raise ProviderError(
                    f"Caddy's config at {admin.address} changed twice while being replaced "
                    "(another writer?); nothing was applied, try again"
                )

    def _prepare(self, settings: CaddySettings) -> None:
        """Directories the config names must exist before Caddy opens them."""
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            settings.storage_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderError(
                f"setting storage_dir: cannot create {settings.storage_dir}: {exc}"
            ) from None

    def routes(self) -> list[Route]:
        settings = self.settings()
        try:
            live, _etag = self.admin(settings).read()
        except AdminUnreachable:
            return []  # a Caddy that does not run serves nothing
        return caddy_config.parse(live, settings, dns_challenge=self.dns_challenge())

    # ManagedProxy ------------------------------------------------------------------------

    def start(self, *, log: LogFn) -> None:
        settings = self.settings()
        if not settings.managed:
            raise ProviderError(
                "setting managed is false: the panel uses the Caddy you run at "
                f"{settings.admin_address}; start that one yourself"
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        process.start(settings, log)

    def stop(self) -> None:
        settings = self.settings()
        if not settings.managed:
            raise ProviderError(
                "setting managed is false: the panel does not stop the Caddy you run"
            )
        process.stop(settings)

    def state(self) -> Mapping[str, Any]:
        return process.state(self.settings())

    def upstreams(self) -> list[dict[str, Any]]:
        """Caddy's view of every upstream (``/reverse_proxy/upstreams``)."""
        return self.admin().upstreams()


class AcmeCertificates(_Base):
    """Certificate states of the domains Caddy's ACME client manages."""

    capability = "certs:acme"

    def status(self, *, domains: Sequence[str]) -> list[CertificateStatus]:
        settings = self.settings()
        storage = settings.storage_dir
        if not (settings.managed or settings.storage_explicit):
            # An existing Caddy may keep its own storage (config.merge): read that one.
            try:
                live, _etag = self.admin(settings).read()
            except ProviderError:
                live = None
            root = caddy_config.storage_root(live)
            if root is not None:
                storage = Path(root)
        return certificate_status(storage, settings.tls_log, list(domains))


def _sources(panel: Panel) -> dict[str, Any]:
    return {
        "settings": lambda: panel.settings(PLUGIN),
        "data_dir": lambda: panel.data_dir(PLUGIN),
        "dns_providers": lambda: list(panel.providers("dns").values()),
    }


@hookimpl
def register_providers(panel: Panel | None) -> Sequence[Any]:
    if panel is None:  # a plugin host without a kernel (tests of the host itself)
        return []
    return [CaddyProxy(**_sources(panel)), AcmeCertificates(**_sources(panel))]
