"""A tiny plugin for the audit tests: org routes that mutate, fail and reveal a secret.

Loaded through the ``plugin_modules`` setting, exactly as an operator would load a
plugin under development.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, JSONBody

from gakwaya.auth.principal import set_audit_target
from gakwaya.errors import FieldError
from gakwaya_sdk import hookimpl
from gakwaya_sdk.permissions import Permission, Role, Scope


class WidgetIn(msgspec.Struct, kw_only=True):
    name: str


class WidgetOut(msgspec.Struct, kw_only=True):
    id: int
    name: str


@post(
    "/api/v1/orgs/{org:str}/widgets",
    operation_id="widgets_create",
    opt={"permission": "widgets.write"},
    sync_to_thread=True,
)
def widgets_create(request: Request[Any, Any, Any], data: JSONBody[WidgetIn]) -> WidgetOut:
    set_audit_target(request, "widget", 42, name=data.name)
    if data.name == "bad":
        raise FieldError("name", "must not be 'bad'")
    return WidgetOut(id=42, name=data.name)


@get(
    "/api/v1/orgs/{org:str}/widgets/{widget_id:int}/secret",
    operation_id="widgets_reveal",
    opt={"permission": "widgets.write", "audit": True},
    sync_to_thread=True,
)
def widgets_reveal(widget_id: FromPath[int]) -> dict[str, str]:
    return {"secret": "s3cr3t"}


@hookimpl
def register_permissions() -> Sequence[Permission]:
    return [
        Permission(
            name="widgets.write",
            description="Make widgets",
            min_role=Role.DEVELOPER,
            scope=Scope.WRITE,
        )
    ]


@hookimpl
def register_routes() -> Sequence[Any]:
    return [widgets_create, widgets_reveal]
