"""Request and response bodies of domains.

The name is checked by the service with :func:`gakwaya_sdk.domains.check_domain` (it
also turns an international name into its IDNA form and knows whether a wildcard is
allowed here), so every refusal quotes the same rule.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from gakwaya_sdk.domains import DOMAIN_RULE
from gakwaya_sdk.types import register_rule

REDIRECTS = ("none", "www_to_apex", "apex_to_www")
REDIRECT_PATTERN = "^(?:none|www_to_apex|apex_to_www)$(?!\\n)"
REDIRECT_RULE = (
    "one of none, www_to_apex (www.NAME redirects to NAME), apex_to_www (NAME without "
    "its www. redirects to NAME)"
)
register_rule(REDIRECT_PATTERN, REDIRECT_RULE)

DomainName = Annotated[str, msgspec.Meta(description=DOMAIN_RULE)]
Redirect = Annotated[str, msgspec.Meta(pattern=REDIRECT_PATTERN, description=REDIRECT_RULE)]
MaxBodyMb = Annotated[
    int, msgspec.Meta(ge=1, le=10240, description="largest request body in MiB, 1 to 10240")
]
TimeoutSeconds = Annotated[
    float,
    msgspec.Meta(ge=1, le=3600, description="seconds the app has to answer, 1 to 3600"),
]


class DomainCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: DomainName
    #: Answer plain HTTP with a redirect to HTTPS.
    https_redirect: bool = True
    redirect: Redirect = "none"
    #: None: no limit.
    max_body_mb: MaxBodyMb | None = None
    #: None: the proxy's default.
    timeout_seconds: TimeoutSeconds | None = None


class DomainUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields present change; ``null`` removes a limit. The name never
    changes (add the new name, then remove this one)."""

    name: str | UnsetType = UNSET
    https_redirect: bool | UnsetType = UNSET
    redirect: Redirect | UnsetType = UNSET
    max_body_mb: MaxBodyMb | UnsetType | None = UNSET
    timeout_seconds: TimeoutSeconds | UnsetType | None = UNSET


class DnsRecord(msgspec.Struct, kw_only=True):
    #: ``A``, ``AAAA``, ``CNAME`` or ``TXT``.
    type: str
    name: str
    value: str
    #: ``routing`` (traffic reaches the server) or ``verification`` (proves ownership).
    purpose: str


class Verification(msgspec.Struct, kw_only=True):
    #: The TXT record looked up, and the value it must hold.
    record: str
    value: str
    verified_at: dt.datetime | None
    #: The last lookup (automatic, every reconcile period, or asked for) and what it
    #: found when it failed.
    checked_at: dt.datetime | None
    error: str


class CertificateView(msgspec.Struct, kw_only=True):
    #: ``pending``, ``issued`` or ``failed``.
    state: str
    not_after: dt.datetime | None
    issuer: str
    reason: str
    #: When the panel last asked the certificate provider.
    checked_at: dt.datetime | None
    #: True when asked of the provider for this answer; false: the stored state.
    live: bool = False


class DomainView(msgspec.Struct, kw_only=True):
    id: int
    app_id: int
    #: IDNA ASCII form (what DNS and the proxy use).
    name: str
    #: The same name in Unicode (equal to ``name`` for an ASCII one).
    display_name: str
    #: ``default`` (given by the panel) or ``custom``.
    kind: str
    #: Verified (or default): routed to the app while it runs.
    active: bool
    https_redirect: bool
    redirect: str
    #: The other name the redirect answers (``www.`` added or removed), if any.
    redirect_from: list[str]
    max_body_mb: int | None
    timeout_seconds: float | None
    #: The records to create at your DNS host.
    dns_records: list[DnsRecord]
    #: Null for a default domain (no proof needed).
    verification: Verification | None
    #: Null when domains are served without TLS (the domains_tls setting).
    certificate: CertificateView | None
    created_at: dt.datetime
    #: Set when the proxies could not be updated after this change (the reconciler
    #: tries again every period); empty otherwise.
    routes_error: str = ""
