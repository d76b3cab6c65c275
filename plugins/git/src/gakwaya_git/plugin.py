"""Hook implementations of gakwaya-git."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_git.config import config_from_panel
from gakwaya_git.provider import GitSource
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel


@hookimpl
def register_providers(panel: Panel) -> Sequence[Any]:
    # The settings are read on each fetch, not now: an operator's change applies at once.
    return [GitSource(lambda: config_from_panel(panel))]
