"""Events of API keys: identifiers, the display prefix and scopes, never the key."""

from __future__ import annotations

from gakwaya_sdk.events import Event


class ApiKeyCreated(Event, tag="api_key.created"):
    key_id: int
    user_id: int
    name: str
    prefix: str
    scopes: list[str]
    expires_at: str | None = None
    created_by: int | None = None


class ApiKeyRevoked(Event, tag="api_key.revoked"):
    key_id: int
    user_id: int
    prefix: str
    #: "revoked" by a person, or "member_removed" when its owner left the org.
    reason: str = "revoked"
    revoked_by: int | None = None


EVENT_TYPES: list[type[Event]] = [ApiKeyCreated, ApiKeyRevoked]
