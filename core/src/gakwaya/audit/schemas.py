"""Response bodies of the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class AuditEntry(msgspec.Struct, kw_only=True):
    """One audit row as the API and ``gakwaya audit list --json`` show it."""

    id: int
    created_at: dt.datetime
    #: "user", "api_key", "system", "cli" or "anonymous".
    actor_type: str
    actor_id: str
    #: The actor's email (``"… (api key 7)"`` for a key) at the time of the action.
    actor_label: str
    #: The operationId of the route (``members_update``) or a named action.
    action: str
    target_type: str
    target_id: str
    #: The client address, as resolved from the peer and trusted proxies.
    ip: str
    #: "success", "denied" (401/403), "failure" (other 4xx) or "error" (5xx).
    outcome: str
    status_code: int | None
    detail: dict[str, Any]
