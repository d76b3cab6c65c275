"""Hook implementations of gakwaya-portproxy, and the ``proxy:ports`` provider."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gakwaya_portproxy.forwarder import PortProxyService, running_services
from gakwaya_portproxy.routes import (
    PLUGIN,
    ROUTES_FILE,
    check_bind_address,
    check_bindable,
    port_routes,
    read,
    write,
)
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel
from gakwaya_sdk.providers import Route
from gakwaya_sdk.services import Service

DEFAULT_BIND_ADDRESS = "0.0.0.0"  # noqa: S104 (the setting's default: reachable apps)


class PortProxy:
    """Serves each routed app on its stable host port (``Route.port``).

    ``apply`` may run in any process of the panel (usually a worker running a
    deployment); it only writes the routes file, which every serving process's
    :class:`PortProxyService` forwards. Routes without a port are another proxy's
    (a domain for Caddy) and are left out."""

    capability = "proxy:ports"

    def __init__(
        self,
        *,
        directory: Path | Callable[[], Path],
        bind_address: str | Callable[[], object] = DEFAULT_BIND_ADDRESS,
    ) -> None:
        self._directory = directory
        self._bind_address = bind_address

    @property
    def routes_file(self) -> Path:
        directory = self._directory() if callable(self._directory) else self._directory
        return directory / ROUTES_FILE

    def apply(self, *, routes: Sequence[Route]) -> None:
        # Everything is checked before the file changes: on any refusal the routes
        # served now keep serving, unchanged.
        kept = port_routes(routes)
        source = self._bind_address
        bind_address = check_bind_address(source() if callable(source) else source)
        check_bindable(bind_address, kept)
        path = self.routes_file
        write(path, kept)
        for service in running_services(path):
            service.reload()

    def routes(self) -> list[Route]:
        return read(self.routes_file)


def _bind_address(panel: Panel) -> Callable[[], object]:
    def current() -> object:
        return panel.settings(PLUGIN).get("bind_address", DEFAULT_BIND_ADDRESS)

    return current


def _directory(panel: Panel) -> Callable[[], Path]:
    return lambda: panel.data_dir(PLUGIN)


@hookimpl
def register_providers(panel: Panel | None) -> Sequence[Any]:
    if panel is None:  # a plugin host without a kernel (tests of the host itself)
        return []
    return [PortProxy(directory=_directory(panel), bind_address=_bind_address(panel))]


@hookimpl
def register_services(panel: Panel | None) -> Sequence[Service]:
    if panel is None:
        return []
    return [
        PortProxyService(
            routes_file=lambda: panel.data_dir(PLUGIN) / ROUTES_FILE,
            bind_address=_bind_address(panel),
        )
    ]
