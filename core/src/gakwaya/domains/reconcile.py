"""The reconciler's domain step (:func:`gakwaya.deploy.reconciler.reconcile` calls it
before it compares the proxies' routes, so what it activates is routed in the same
pass):

1. every app gets its default domain when ``proxy_base_domain`` is set;
2. pending custom domains are verified by their TXT record, each at most once per
   reconcile period (a user who created the record need not come back to ask);
3. the certificate state of every active domain is asked of the ``certs`` provider
   and stored; ``certificate.issued`` and ``certificate.failed`` are sent when it
   changes, ``certificate.expiring`` once per certificate under 14 days.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from gakwaya.db.base import utcnow
from gakwaya.db.models import Domain
from gakwaya.domains.dns import lookup_txt
from gakwaya.domains.events import (
    CertificateExpiring,
    CertificateFailed,
    CertificateIssued,
    DomainVerified,
)
from gakwaya.domains.routing import challenge_record
from gakwaya.domains.services import (
    certificate_statuses,
    certs_provider,
    ensure_default_domains,
    record_lookup,
)
from gakwaya_sdk.events import Event
from gakwaya_sdk.providers import CertificateStatus, ProviderError

if TYPE_CHECKING:
    from gakwaya.deploy.reconciler import Report
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.domains")

#: A certificate with less time left than this raises ``certificate.expiring``.
EXPIRY_WARNING = dt.timedelta(days=14)
#: Pending domains looked up per pass at most (each lookup may take seconds).
MAX_LOOKUPS = 20
CERT_STATES = ("pending", "issued", "failed")


def reconcile_domains(kernel: Kernel, report: Report) -> None:
    try:
        made = ensure_default_domains(kernel)
    except SQLAlchemyError as exc:
        report.errors.append(f"default domains: {exc}")
    else:
        if made:
            report.actions.append(f"{made} default domain(s) created")
    verify_pending(kernel, report)
    poll_certificates(kernel, report)


def verify_pending(kernel: Kernel, report: Report) -> None:
    now = utcnow()
    due = now - dt.timedelta(seconds=0.9 * kernel.settings.reconcile_interval)
    with kernel.db.transaction(write=False) as db:
        rows = db.execute(
            select(Domain.id, Domain.name)
            .where(
                Domain.kind == "custom",
                Domain.verified_at.is_(None),
                or_(Domain.verify_checked_at.is_(None), Domain.verify_checked_at < due),
            )
            .order_by(Domain.verify_checked_at.is_not(None), Domain.verify_checked_at, Domain.id)
            .limit(MAX_LOOKUPS)
        ).all()
    for domain_id, name in rows:
        lookup = lookup_txt(kernel.settings, challenge_record(name))
        with kernel.db.transaction() as db:
            domain = db.get(Domain, domain_id, with_for_update=True)
            if domain is None:
                continue
            outcome = record_lookup(db, domain, lookup)
            event = DomainVerified(
                org_id=domain.org_id, domain_id=domain.id, app_id=domain.app_id, name=domain.name
            )
        if outcome.verified:
            kernel.events.publish(event)
            report.actions.append(f"domain {domain_id} ({name}): verified by its TXT record")


def poll_certificates(kernel: Kernel, report: Report) -> None:
    if not kernel.settings.domains_tls:
        return
    provider = certs_provider(kernel)
    if provider is None:
        return
    with kernel.db.transaction(write=False) as db:
        rows = db.execute(
            select(Domain.id, Domain.name).where(Domain.verified_at.is_not(None))
        ).all()
    if not rows:
        return
    try:
        statuses = certificate_statuses(provider, [name for _id, name in rows])
    except ProviderError as exc:
        report.errors.append(f"{provider.capability}: {exc}")
        return
    now = utcnow()
    events: list[Event] = []
    with kernel.db.transaction() as db:
        for domain_id, name in rows:
            status = statuses.get(name)
            domain = db.get(Domain, domain_id)
            if status is not None and domain is not None:
                events += store_status(domain, status, now)
    for event in events:
        kernel.events.publish(event)
        report.actions.append(f"domain {getattr(event, 'name', '')}: {event.type_name}")


def store_status(domain: Domain, status: CertificateStatus, now: dt.datetime) -> list[Event]:
    """Keep the provider's answer on the row; the events its change calls for."""
    state = status.state if status.state in CERT_STATES else "pending"
    not_after = status.not_after
    if not_after is not None and not_after.tzinfo is None:
        not_after = not_after.replace(tzinfo=dt.UTC)
    before, before_after = domain.cert_state, domain.cert_not_after
    domain.cert_state = state
    domain.cert_not_after = not_after
    domain.cert_issuer = status.issuer[:500]
    domain.cert_reason = status.reason[:4000]
    domain.cert_checked_at = now
    ids = {"org_id": domain.org_id, "domain_id": domain.id, "app_id": domain.app_id}
    events: list[Event] = []
    if state == "issued" and (before != "issued" or before_after != not_after):
        events.append(
            CertificateIssued(**ids, name=domain.name, not_after=not_after, issuer=status.issuer)
        )
    elif state == "failed" and before != "failed":
        events.append(CertificateFailed(**ids, name=domain.name, reason=status.reason))
    if (
        not_after is not None
        and state in ("issued", "failed")
        and not_after - now < EXPIRY_WARNING
        and domain.cert_warned_for != not_after
    ):
        domain.cert_warned_for = not_after
        events.append(
            CertificateExpiring(
                **ids,
                name=domain.name,
                not_after=not_after,
                days_left=max(0, (not_after - now).days),
            )
        )
    return events
