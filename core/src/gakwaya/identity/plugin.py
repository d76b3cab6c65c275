"""Identity as a built-in plugin: routes for setup, sign-in and the account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk import hookimpl


@hookimpl
def register_routes() -> Sequence[Any]:
    # Imported here: the controllers need the kernel module, which loads this plugin.
    from gakwaya.identity.controllers import ROUTES
    from gakwaya.identity.pages import PAGES

    return [*ROUTES, *PAGES]
