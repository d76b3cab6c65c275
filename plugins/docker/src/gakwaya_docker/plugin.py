"""Hook implementations of gakwaya-docker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gakwaya_docker.runtime import DockerRuntime
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel

PLUGIN = "gakwaya-docker"


@hookimpl
def register_providers(panel: Panel | None) -> Sequence[Any]:
    # Settings are read where they are used (they are not ready during this hook),
    # so an operator's change applies without a restart.
    def setting(name: str) -> Callable[[], str]:
        def read() -> str:
            if panel is None:
                return ""
            return str(panel.settings(PLUGIN).get(name) or "")

        return read

    return [DockerRuntime(host=setting("docker_host"), network_pool=setting("network_pool"))]
