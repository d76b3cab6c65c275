"""The Litestar application factory (the ``ApplicationCore`` of litestar-fullstack)."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from sqlalchemy.orm import Session

from gakwaya import __version__
from gakwaya.auth.middleware import SAFE_METHODS, KernelMiddleware
from gakwaya.auth.principal import (
    provide_client_ip,
    provide_optional_principal,
    provide_org,
    provide_principal,
)
from gakwaya.errors import EXCEPTION_HANDLERS
from gakwaya.kernel import Kernel
from gakwaya_sdk.context import PANEL_STATE_KEY, Panel

log = logging.getLogger("gakwaya")

OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


class RouteDeclarationError(Exception):
    """A route breaks a kernel rule (operationId, permission); the app refuses to build."""


def _provide_kernel(request: Request[Any, Any, Any]) -> Kernel:
    return request.app.state.kernel  # type: ignore[no-any-return]


def _provide_panel(request: Request[Any, Any, Any]) -> Panel:
    """What plugin handlers get (``panel: NamedDependency[Panel]``): the SDK's
    protocol, never the kernel itself."""
    panel = request.app.state.kernel.plugins.panel
    if panel is None:  # the kernel sets it before loading plugins; anything else is a bug
        raise RuntimeError("the kernel has no panel")
    return panel  # type: ignore[no-any-return]


async def _provide_db(request: Request[Any, Any, Any]) -> AsyncIterator[Session]:
    """One session per request, closed on the event loop.

    An async generator on purpose: Litestar cleans up a *sync* generator in a worker
    thread, and under load every worker thread can be a handler waiting for a pooled
    connection that only that cleanup would return: a deadlock. Closing a session is a
    pool check-in (and a rollback of a finished transaction): cheap enough here.
    """
    kernel: Kernel = request.app.state.kernel
    session = kernel.db.session(write=request.method not in SAFE_METHODS)
    try:
        yield session
    finally:
        session.close()


def _is_automatic_options(handler: Any) -> bool:
    """Litestar adds an undocumented OPTIONS handler (no operationId) to every path."""
    return (
        handler.http_methods == {"OPTIONS"}
        and handler.operation_id is None
        and handler.include_in_schema is False
    )


def _check_routes(app: Litestar, kernel: Kernel) -> None:
    seen: dict[str, str] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not route.path.startswith("/api/"):
                continue
            if _is_automatic_options(handler):
                continue
            op = handler.operation_id
            if not isinstance(op, str) or not OPERATION_ID.match(op):
                raise RouteDeclarationError(
                    f"{route.path}: operation_id {op!r} must be '<resource>_<verb>' in snake_case"
                )
            if op in seen:
                raise RouteDeclarationError(
                    f"operation_id {op!r} used by {seen[op]} and {route.path}"
                )
            seen[op] = route.path
            opt = handler.opt or {}
            if "{org:" in route.path and not opt.get("public"):
                perm = opt.get("permission")
                if not isinstance(perm, str) or perm not in kernel.permissions:
                    raise RouteDeclarationError(
                        f"{op}: routes under an organization need opt['permission'] naming a "
                        f"registered permission, got {perm!r}"
                    )


def _limit_request_threads(count: int) -> None:
    """Run sync handlers and the kernel middleware on ``count`` threads.

    Litestar runs sync handlers on the loop's default executor, the middleware uses
    anyio's (40 threads): under load dozens of threads then take turns on the GIL and
    throughput falls (measured in docs/benchmarks.md). A few threads per core keep the
    CPU busy without the churn; nothing here blocks a thread for long (live streams
    wait on the loop, jobs have their own threads).
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = count
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=count, thread_name_prefix="gakwaya-request")
    )


def create_app(kernel: Kernel | None = None, *, background: bool = True) -> Litestar:
    """Build the ASGI app. ``background=False`` leaves the job runner, the event relay
    and the plugins' services to the caller (tests that drive them explicitly)."""
    kernel = kernel or Kernel.create()
    handlers = [route for _plugin, route in kernel.plugins.routes()]

    async def on_startup(app: Litestar) -> None:
        _limit_request_threads(kernel.settings.request_threads)
        if background:
            kernel.start_background()
            kernel.start_services()

    async def on_shutdown(app: Litestar) -> None:
        if background:
            kernel.stop_services()
            kernel.stop_background()

    config = AppConfig(
        # One Router holding every handler: registering handlers one by one makes
        # Litestar re-register the earlier handlers of a shared path (GET and PATCH of
        # /orgs/{org}), wrapping sync_to_thread functions twice: they then return a
        # coroutine instead of their value (a 500).
        route_handlers=[Router("/", route_handlers=handlers)],
        middleware=[KernelMiddleware(kernel)],
        exception_handlers=EXCEPTION_HANDLERS,
        dependencies={
            "kernel": Provide(_provide_kernel, sync_to_thread=False),
            "db": Provide(_provide_db),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "maybe_principal": Provide(provide_optional_principal, sync_to_thread=False),
            # Not "org": that name is the {org:str} path parameter, and Litestar refuses
            # a dependency and a path parameter with the same name.
            "current_org": Provide(provide_org, sync_to_thread=False),
            "panel": Provide(_provide_panel, sync_to_thread=False),
            "client_ip": Provide(provide_client_ip, sync_to_thread=False),
        },
        openapi_config=OpenAPIConfig(
            title="Gakwaya API",
            version=__version__,
            description="The REST API of the Gakwaya panel. Errors are application/problem+json.",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            # The schema is the public contract: readable without signing in.
            openapi_router=Router(
                "/schema", route_handlers=[], include_in_schema=False, opt={"public": True}
            ),
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http", scheme="bearer", description="An API key: gkw_…"
                    ),
                    "session": SecurityScheme(
                        type="apiKey",
                        name="gakwaya_session",
                        security_scheme_in="cookie",
                        description="A browser session; writes also need X-CSRF-Token.",
                    ),
                }
            ),
            security=[{"apiKey": []}, {"session": []}],
        ),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        debug=False,
        # AppConfig leaves this Empty (unlike Litestar()), and then every request with a
        # body fails with a 500; Litestar's own default is 10 MB.
        request_max_body_size=10_000_000,
    )
    app = Litestar.from_config(config)
    app.state.kernel = kernel
    # For plugin code outside dependency injection (gakwaya_sdk.context.panel_of).
    app.state[PANEL_STATE_KEY] = kernel.plugins.panel
    _check_routes(app, kernel)
    return app


def settle_heap() -> None:
    """Take what start-up built out of the garbage collector's reach, in a serving
    process only.

    The app, its route handlers and signature models, the plugins and the templates
    live as long as the process: hundreds of thousands of objects that every full
    collection would walk again, pausing whichever request triggers it (the dashboard
    bench, docs/benchmarks.md, saw single requests of 100-370 ms from those passes).
    One collection now, then ``gc.freeze()`` moves the survivors to a permanent
    generation that later collections skip. Not for tests that build many apps in one
    process: what is frozen is never freed.
    """
    gc.collect()
    gc.freeze()


def create_served_app() -> Litestar:
    """The factory each ``gakwaya serve --workers N`` process calls."""
    app = create_app()
    settle_heap()
    return app
