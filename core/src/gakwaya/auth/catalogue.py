"""The permission catalogue: every permission any loaded plugin registered."""

from __future__ import annotations

import logging

from gakwaya_sdk.permissions import Permission, Role, Scope, effective_scopes

log = logging.getLogger("gakwaya.auth")


class PermissionCatalogue:
    def __init__(self, entries: list[tuple[str, Permission]]) -> None:
        self.entries: dict[str, Permission] = {}
        self.owners: dict[str, str] = {}
        self.conflicts: list[str] = []
        for plugin, perm in entries:
            if perm.name in self.entries:
                msg = (
                    f"permission {perm.name!r} from {plugin} ignored: "
                    f"already registered by {self.owners[perm.name]}"
                )
                log.warning(msg)
                self.conflicts.append(msg)
                continue
            self.entries[perm.name] = perm
            self.owners[perm.name] = plugin

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def get(self, name: str) -> Permission:
        return self.entries[name]

    def role_allows(self, role: Role, name: str) -> bool:
        return role.rank >= self.entries[name].min_role.rank

    def scopes_allow(self, scopes: frozenset[Scope] | None, name: str) -> bool:
        return scopes is None or self.entries[name].scope in scopes

    def for_role(self, role: Role) -> list[str]:
        return sorted(n for n in self.entries if self.role_allows(role, n))

    def for_key(self, role: Role, scopes: list[str]) -> list[str]:
        eff = effective_scopes(scopes)
        return sorted(n for n in self.for_role(role) if self.entries[n].scope in eff)
