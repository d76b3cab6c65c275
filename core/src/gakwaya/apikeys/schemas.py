"""Request and response bodies of API keys. The key itself appears only in
:class:`ApiKeyIssued`, the answer to its creation."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from gakwaya_sdk.permissions import Scope
from gakwaya_sdk.types import DisplayName

Scopes = Annotated[
    list[Scope],
    msgspec.Meta(
        min_length=1, max_length=4, description="one or more of read, deploy, write, admin"
    ),
]
LifetimeDays = Annotated[int, msgspec.Meta(ge=1, le=3650, description="1 to 3650 days")]
AwareDateTime = Annotated[
    dt.datetime, msgspec.Meta(tz=True, description="a date and time with a time zone")
]


class ApiKeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: DisplayName
    scopes: Scopes
    #: Lifetime in days; or give ``expires_at``; neither: the key does not expire.
    expires_in_days: LifetimeDays | None = None
    expires_at: AwareDateTime | None = None


class ApiKeyView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    #: The first characters of the key, to recognise it (``gkw_Ab12Cd34``).
    prefix: str
    user_id: int
    owner_email: str
    scopes: list[str]
    #: active, expired or revoked.
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class ApiKeyIssued(ApiKeyView, kw_only=True):
    """A new key. ``key`` is shown this once: store it now, it cannot be shown again."""

    key: str
