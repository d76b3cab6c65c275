"""``/healthz`` says the process answers; ``/readyz`` checks its dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Request, get
from litestar.response import Response
from sqlalchemy import text

from gakwaya_sdk import hookimpl


class Check(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    detail: str = ""


class Health(msgspec.Struct, kw_only=True):
    status: str
    checks: list[Check] = []


@get("/healthz", operation_id="health_live", opt={"public": True}, tags=["health"])
async def healthz() -> Health:
    """The process is alive and serving."""
    return Health(status="ok")


@get(
    "/readyz",
    operation_id="health_ready",
    opt={"public": True},
    tags=["health"],
    sync_to_thread=True,
)
def readyz(request: Request[Any, Any, Any]) -> Response[Health]:
    """The database answers and, when configured, Redis does too; 503 otherwise."""
    kernel = request.app.state.kernel
    checks = []
    try:
        with kernel.db.session() as db:
            db.execute(text("SELECT 1"))
        checks.append(Check(name="database", ok=True, detail=kernel.db.engine.dialect.name))
    except Exception as exc:
        checks.append(Check(name="database", ok=False, detail=type(exc).__name__))
    if kernel.redis is not None:
        try:
            kernel.redis.ping()
            checks.append(Check(name="redis", ok=True))
        except Exception as exc:
            checks.append(Check(name="redis", ok=False, detail=type(exc).__name__))
    ok = all(c.ok for c in checks)
    return Response(
        Health(status="ok" if ok else "unavailable", checks=checks),
        status_code=200 if ok else 503,
    )


@hookimpl
def register_routes() -> Sequence[Any]:
    return [healthz, readyz]
