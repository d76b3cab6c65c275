"""The plugin host's own routes, as a built-in plugin (``core.plugins``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl


@hookimpl
def register_routes() -> Sequence[Any]:
    from gakwaya.plugins.controllers import plugins_disable, plugins_enable, plugins_list

    return [plugins_list, plugins_enable, plugins_disable]
