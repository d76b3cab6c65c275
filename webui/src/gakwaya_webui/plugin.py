"""The dashboard's hook implementations: its pages and its static files.

Pages live in ``gakwaya_webui.pages.<area>``, each module exposing ``ROUTES``; they
are mounted under one router that adds the security headers and turns an API error
escaping a handler into the sign-in redirect (401) or an error page.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from gakwaya_sdk import hookimpl
from gakwaya_webui import pages
from gakwaya_webui.api import ApiError
from gakwaya_webui.render import error_response, headers_middleware
from gakwaya_webui.routing import OPT

log = logging.getLogger("gakwaya_webui")

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static/webui"


def page_routes() -> list[Any]:
    """``ROUTES`` of every module of ``gakwaya_webui.pages``, in name order."""
    routes: list[Any] = []
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{pages.__name__}.{info.name}")
        except Exception:  # one broken page module must not take the dashboard down
            log.exception("dashboard page module %s failed to import", info.name)
            continue
        routes.extend(getattr(module, "ROUTES", []))
    return routes


@hookimpl
def register_routes() -> Sequence[Any]:
    static = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        include_in_schema=False,
        opt=dict(OPT),
        name="webui_static",
        # Revalidated (ETag) rather than cached blindly: file names carry no version.
        cache_control=CacheControlHeader(no_cache=True),
        middleware=[headers_middleware],
    )
    router = Router(
        "/",
        route_handlers=page_routes(),
        include_in_schema=False,
        opt=dict(OPT),
        middleware=[headers_middleware],
        exception_handlers={ApiError: error_response},
    )
    return [router, static]


__all__ = ["register_routes"]
