"""Roles, API-key scopes and the permission entries plugins register.

A permission is granted when two checks pass: the member's role in the
organization is at least ``min_role``, and, when the request carries an API
key, the key's scopes imply ``scope``. Keeping both on one entry means a
plugin author declares a route's requirements in one place.
"""

from __future__ import annotations

import enum
import re

import msgspec


class Role(enum.StrEnum):
    """A member's role in an organization, lowest first in :data:`ROLE_RANK`."""

    VIEWER = "viewer"
    DEVELOPER = "developer"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]


ROLE_RANK: dict[Role, int] = {Role.VIEWER: 1, Role.DEVELOPER: 2, Role.ADMIN: 3, Role.OWNER: 4}


class Scope(enum.StrEnum):
    """What an API key may do. A scope implies the ones listed in :data:`SCOPE_IMPLIES`."""

    READ = "read"
    DEPLOY = "deploy"
    WRITE = "write"
    ADMIN = "admin"


SCOPE_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.DEPLOY: frozenset({Scope.READ, Scope.DEPLOY}),
    Scope.WRITE: frozenset({Scope.READ, Scope.DEPLOY, Scope.WRITE}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.DEPLOY, Scope.WRITE, Scope.ADMIN}),
}


def effective_scopes(scopes: list[Scope] | list[str]) -> frozenset[Scope]:
    """Every scope granted by ``scopes``, implied ones included."""
    out: set[Scope] = set()
    for s in scopes:
        out |= SCOPE_IMPLIES[Scope(s)]
    return frozenset(out)


PERMISSION_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class Permission(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the permission catalogue.

    ``name`` is dotted, resource first (``apps.deploy``); ``min_role`` is the
    lowest role that holds it; ``scope`` is what an API key needs for it.
    """

    name: str
    description: str
    min_role: Role
    scope: Scope

    def __post_init__(self) -> None:
        if not PERMISSION_NAME.match(self.name):
            raise ValueError(
                f"permission name {self.name!r} must be dotted lowercase words, e.g. 'apps.deploy'"
            )
