"""What the events API returns, and the rules for its query values."""

from __future__ import annotations

from gakwaya_sdk.events import EventEnvelope
from gakwaya_sdk.types import register_rule

#: An event type name (``deployment.succeeded``), or a family (``deployment.*``).
TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$"
TYPE_RULE = (
    "an event type: dotted lowercase words like deployment.succeeded, "
    "or a family like deployment.*; at most 100 characters"
)
register_rule(TYPE_PATTERN, TYPE_RULE)

EVENT_ID_RULE = "an event id: the id of the last event received (digits)"

__all__ = ["EVENT_ID_RULE", "TYPE_PATTERN", "TYPE_RULE", "EventEnvelope"]
