"""The resolved caller of a request and the organization it acts in."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.connection import ASGIConnection

from gakwaya.errors import NotAuthenticated
from gakwaya_sdk.permissions import Role, Scope


class Principal(msgspec.Struct, kw_only=True):
    """A signed-in user, through a browser session or an API key."""

    user_id: int
    email: str
    is_superuser: bool = False
    via: str  # "session" or "api_key"
    session_id: int | None = None
    csrf_token: str | None = None
    api_key_id: int | None = None
    api_key_org_id: int | None = None
    #: Effective scopes of the API key; None for a session (scopes do not apply).
    scopes: frozenset[Scope] | None = None

    @property
    def label(self) -> str:
        if self.via == "api_key":
            return f"{self.email} (api key {self.api_key_id})"
        return self.email

    @property
    def actor_type(self) -> str:
        return "api_key" if self.via == "api_key" else "user"

    @property
    def actor_id(self) -> str:
        return str(self.api_key_id if self.via == "api_key" else self.user_id)


class OrgContext(msgspec.Struct, kw_only=True):
    """The organization named in the path, and the caller's role in it."""

    id: int
    slug: str
    name: str
    role: Role


def state_of(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    return connection.scope.setdefault("state", {})


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = state_of(request).get("principal")
    if principal is None:
        raise NotAuthenticated("sign in or send an API key as 'Authorization: Bearer gkw_…'")
    return principal  # type: ignore[no-any-return]


def provide_optional_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    return state_of(request).get("principal")


def provide_org(request: ASGIConnection[Any, Any, Any, Any]) -> OrgContext:
    org = state_of(request).get("org")
    if org is None:  # a route under /orgs/{org} always has it; anything else is a bug
        raise RuntimeError("route has no organization in its path")
    return org  # type: ignore[no-any-return]


def provide_client_ip(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    return str(state_of(request).get("client_ip", ""))


def set_audit_target(
    request: ASGIConnection[Any, Any, Any, Any],
    target_type: str,
    target_id: object,
    **detail: Any,
) -> None:
    """Name what a mutating request acted on, for its audit row."""
    state = state_of(request)
    state["audit_target"] = (target_type, str(target_id))
    if detail:
        state.setdefault("audit_detail", {}).update(detail)
