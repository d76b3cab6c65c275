"""Small plugin objects for the plugin-host tests, each with a ``MANIFEST``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission


def plugin(name: str, version: str = "1.0", **manifest: Any) -> object:
    """A plugin object whose ``register_permissions`` adds ``<name>.read``-like nothing."""

    class Plugin:
        MANIFEST: dict[str, Any] = {
            "name": name,
            "version": version,
            "core_api": ">=0.1,<0.2",
            **manifest,
        }

        @hookimpl
        def register_permissions(self) -> Sequence[Permission]:
            return []

    return Plugin()


class UnknownHook:
    MANIFEST = {"name": "unknown-hook", "version": "1.0", "core_api": ">=0.1"}

    @hookimpl
    def register_wizards(self) -> list[str]:
        return []
