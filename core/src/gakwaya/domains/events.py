"""Events of domains and their certificates: identifiers and facts only."""

from __future__ import annotations

import datetime as dt

from gakwaya_sdk.events import Event


class DomainAdded(Event, tag="domain.added"):
    domain_id: int
    app_id: int
    name: str
    kind: str


class DomainUpdated(Event, tag="domain.updated"):
    domain_id: int
    app_id: int
    fields: list[str]


class DomainVerified(Event, tag="domain.verified"):
    """The TXT record was seen: the domain is active and routed."""

    domain_id: int
    app_id: int
    name: str


class DomainRemoved(Event, tag="domain.removed"):
    domain_id: int
    app_id: int
    name: str


class CertificateIssued(Event, tag="certificate.issued"):
    """A certificate is served for the domain (first issuance or a renewal)."""

    domain_id: int
    app_id: int
    name: str
    not_after: dt.datetime | None = None
    issuer: str = ""


class CertificateFailed(Event, tag="certificate.failed"):
    domain_id: int
    app_id: int
    name: str
    #: The CA's or the proxy's words.
    reason: str


class CertificateExpiring(Event, tag="certificate.expiring"):
    """Sent once per certificate when it has less than 14 days left (renewal is the
    proxy's; this says it has not happened yet)."""

    domain_id: int
    app_id: int
    name: str
    not_after: dt.datetime
    days_left: int


EVENT_TYPES: list[type[Event]] = [
    DomainAdded,
    DomainUpdated,
    DomainVerified,
    DomainRemoved,
    CertificateIssued,
    CertificateFailed,
    CertificateExpiring,
]
