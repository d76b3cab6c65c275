"""Domains: the rules shared by the API, the CLI and the reconciler.

A name reaches a proxy's configuration, certificate requests and DNS queries, so it is
checked with :func:`gakwaya_sdk.domains.check_domain` before anything is written: a
bad one is a 422 naming ``name`` and quoting the rule.

Ownership: a custom domain is **pending** until the TXT record
``_gakwaya-challenge.<name>`` holds its token; then it is **active** and routed. An
active name, and the www/apex name its redirect answers, belong to one organization
in the whole installation. Claims are checked under one lock (a PostgreSQL advisory
lock for the transaction; SQLite serialises writers), and the database's partial
unique index on active names is the last word.

Default domains (``<app>-<env>.<proxy_base_domain>``) are active from the start: the
operator points a wildcard record at the server, and names under the base domain
cannot be claimed as custom ones. They cannot be removed (they go with their app)
and keep their name when the app is renamed, so a URL once given stays valid.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import idna
import msgspec
from sqlalchemy import exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Domain, Environment
from gakwaya.domains.dns import TxtLookup
from gakwaya.domains.routing import (
    challenge_record,
    claim_candidates,
    claimed_names,
    redirect_partner,
)
from gakwaya.domains.schemas import (
    CertificateView,
    DnsRecord,
    DomainCreate,
    DomainUpdate,
    DomainView,
    Verification,
)
from gakwaya.errors import Conflict, FieldError, GakwayaError
from gakwaya.orgs.scoped import get_in_org, in_org
from gakwaya.orgs.services import FieldConflict
from gakwaya.pagination import next_cursor
from gakwaya_sdk.domains import DOMAIN_RULE, check_domain
from gakwaya_sdk.providers import CertificateIssuer, CertificateStatus, ProviderError
from gakwaya_sdk.sources import RuleError

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel
    from gakwaya.settings import Settings

log = logging.getLogger("gakwaya.domains")

#: PostgreSQL advisory lock key held (for the transaction) while claims are checked.
CLAIMS_LOCK_KEY = 0x676B_646D  # "gkdm"
CLAIMED = "already claimed by another organization"


# Names ----------------------------------------------------------------------------------


def check_name(kernel: Kernel, value: str) -> str:
    """``value`` in IDNA ASCII form, lower case; a wildcard only when a ``dns``
    provider can get its certificate (DNS-01)."""
    try:
        return check_domain(value, wildcard=bool(kernel.plugins.providers("dns")))
    except RuleError as exc:
        raise FieldError("name", str(exc)) from None


def check_partner(name: str, redirect: str) -> str | None:
    """The other name ``redirect`` makes ``name`` answer, after checking it fits."""
    if redirect == "none":
        return None
    if name.startswith("*."):
        raise FieldError("redirect", "none for a wildcard domain")
    if redirect == "www_to_apex" and name.startswith("www."):
        raise FieldError(
            "redirect",
            "www_to_apex needs a name without 'www.' (it redirects www.NAME to NAME); "
            "for a www. name use apex_to_www",
        )
    if redirect == "apex_to_www" and not name.startswith("www."):
        raise FieldError(
            "redirect",
            "apex_to_www needs a name starting with 'www.' (it redirects NAME without "
            "'www.' to NAME); for other names use www_to_apex",
        )
    partner = redirect_partner(name, redirect)
    assert partner is not None
    try:
        check_domain(partner)
    except RuleError:
        raise FieldError(
            "redirect", f"the other name, {partner}, would not be {DOMAIN_RULE}"
        ) from None
    return partner


def _check_reserved(settings: Settings, name: str, partner: str | None) -> None:
    """Names under the base domain are the panel's to give; the panel's own is its."""
    base = settings.proxy_base_domain
    for field, value in (("name", name), ("redirect", partner)):
        if value is None:
            continue
        if base and (value == base or value.endswith("." + base)):
            raise FieldError(
                field,
                f"not {base} or a name under it: those are the panel's default domains",
            )
        if settings.panel_domain and value == settings.panel_domain:
            raise FieldConflict(field, "the panel's own domain")


def claims_lock(db: Session) -> None:
    """Serialise claim checks with other transactions (PostgreSQL; on SQLite the
    write transaction already excludes every other writer)."""
    bind = db.get_bind()
    if bind.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIMS_LOCK_KEY})


def _check_claims(
    db: Session, org_id: int, name: str, partner: str | None, *, own: int | None
) -> None:
    """Refuse names another organization has proven (or this one already has)."""
    names = [name] if partner is None else [name, partner]
    rows = db.scalars(
        select(Domain).where(Domain.name.in_(sorted(claim_candidates(names)))).order_by(Domain.id)
    ).all()
    # Another organization's proof first: the name is lost, whatever this one has.
    rows = sorted(rows, key=lambda r: r.org_id == org_id)
    for other in rows:
        if other.id == own:
            continue
        overlap = set(claimed_names(other.name, other.redirect)) & set(names)
        if not overlap:
            continue
        field = "name" if name in overlap else "redirect"
        if other.org_id != org_id:
            if other.verified_at is not None:
                raise FieldConflict(field, CLAIMED)
            continue  # pending elsewhere: the first to prove it wins
        which = name if name in overlap else sorted(overlap)[0]
        if other.name == which:
            rule = f"{which} is already domain {other.id} (of app {other.app_id}) here"
        else:
            rule = f"{which} already redirects to domain {other.id} ({other.name}) here"
        raise FieldConflict(field, rule)


# Reading ----------------------------------------------------------------------------------


def get_domain(db: Session, org_id: int, domain_id: int, *, for_update: bool = False) -> Domain:
    return get_in_org(db, Domain, domain_id, org_id, what="domain", for_update=for_update)


def list_domains(
    db: Session, org_id: int, app_id: int, *, cursor: int | None = None, limit: int = 50
) -> tuple[list[Domain], str | None]:
    """The app's domains, newest first (404 for an app of another organization)."""
    get_in_org(db, App, app_id, org_id, what="app")
    query = in_org(Domain, org_id).where(Domain.app_id == app_id)
    if cursor is not None:
        query = query.where(Domain.id < cursor)
    rows = list(db.scalars(query.order_by(Domain.id.desc()).limit(limit + 1)))
    return rows[:limit], next_cursor([r.id for r in rows], limit)


def default_names(db: Session, app_ids: Sequence[int]) -> dict[int, str]:
    """Each app's default domain name (what a custom domain may CNAME to)."""
    rows = db.execute(
        select(Domain.app_id, Domain.name).where(
            Domain.app_id.in_(list(app_ids)), Domain.kind == "default"
        )
    )
    return {app_id: name for app_id, name in rows}


def dns_records(settings: Settings, domain: Domain, default_name: str | None) -> list[DnsRecord]:
    """What to create at the DNS host: traffic to the server (A/AAAA when the server's
    addresses are set, else a CNAME to the app's default domain) for the name and its
    redirect's, and the TXT token. A default domain needs none."""
    if domain.kind == "default":
        return []
    records: list[DnsRecord] = []
    for host in claimed_names(domain.name, domain.redirect):
        if settings.server_ipv4:
            records.append(
                DnsRecord(type="A", name=host, value=settings.server_ipv4, purpose="routing")
            )
        if settings.server_ipv6:
            records.append(
                DnsRecord(type="AAAA", name=host, value=settings.server_ipv6, purpose="routing")
            )
        if not (settings.server_ipv4 or settings.server_ipv6) and default_name:
            records.append(
                DnsRecord(type="CNAME", name=host, value=default_name, purpose="routing")
            )
    records.append(
        DnsRecord(
            type="TXT",
            name=challenge_record(domain.name),
            value=domain.token,
            purpose="verification",
        )
    )
    return records


def certs_provider(kernel: Kernel) -> CertificateIssuer | None:
    found = kernel.plugins.providers("certs")
    provider: CertificateIssuer | None = found[sorted(found)[0]] if found else None
    return provider


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def certificate_view(
    kernel: Kernel, domain: Domain, *, live: bool = False
) -> CertificateView | None:
    """The stored state, or (``live``, for an active domain) the provider's answer now."""
    if not kernel.settings.domains_tls:
        return None
    stored = CertificateView(
        state=domain.cert_state,
        not_after=domain.cert_not_after,
        issuer=domain.cert_issuer,
        reason=domain.cert_reason,
        checked_at=domain.cert_checked_at,
    )
    provider = certs_provider(kernel) if live and domain.verified_at is not None else None
    if provider is None:
        return stored
    try:
        status = provider.status(domains=[domain.name])[0]
    except ProviderError as exc:
        log.warning("%s: certificate status of %s: %s", provider.capability, domain.name, exc)
        return stored
    except Exception:
        log.exception("%s: certificate status of %s failed", provider.capability, domain.name)
        return stored
    return CertificateView(
        state=status.state,
        not_after=_aware(status.not_after),
        issuer=status.issuer,
        reason=status.reason,
        checked_at=utcnow(),
        live=True,
    )


def _display(name: str) -> str:
    prefix = "*." if name.startswith("*.") else ""
    rest = name[len(prefix) :]
    if "xn--" not in rest:
        return name
    try:
        return prefix + str(idna.decode(rest))
    except (idna.IDNAError, UnicodeError):
        return name


def domain_view(
    kernel: Kernel,
    domain: Domain,
    default_name: str | None,
    *,
    live: bool = False,
    routes_error: str = "",
) -> DomainView:
    partner = redirect_partner(domain.name, domain.redirect)
    verification = None
    if domain.kind == "custom":
        verification = Verification(
            record=challenge_record(domain.name),
            value=domain.token,
            verified_at=domain.verified_at,
            checked_at=domain.verify_checked_at,
            error=domain.verify_error,
        )
    return DomainView(
        id=domain.id,
        app_id=domain.app_id,
        name=domain.name,
        display_name=_display(domain.name),
        kind=domain.kind,
        active=domain.verified_at is not None,
        https_redirect=domain.https_redirect,
        redirect=domain.redirect,
        redirect_from=[partner] if partner else [],
        max_body_mb=domain.max_body_mb,
        timeout_seconds=domain.timeout_seconds,
        dns_records=dns_records(kernel.settings, domain, default_name),
        verification=verification,
        certificate=certificate_view(kernel, domain, live=live),
        created_at=domain.created_at,
        routes_error=routes_error,
    )


def view_of(
    kernel: Kernel, db: Session, domain: Domain, *, live: bool = False, routes_error: str = ""
) -> DomainView:
    default = default_names(db, [domain.app_id]).get(domain.app_id)
    return domain_view(kernel, domain, default, live=live, routes_error=routes_error)


# Writing ----------------------------------------------------------------------------------


def add_domain(
    db: Session, kernel: Kernel, *, org_id: int, app_id: int, data: DomainCreate
) -> Domain:
    """Add a custom domain, pending until its TXT record is seen; nothing is written
    when a value is bad or the name is taken."""
    get_in_org(db, App, app_id, org_id, what="app")
    name = check_name(kernel, data.name)
    partner = check_partner(name, data.redirect)
    _check_reserved(kernel.settings, name, partner)
    claims_lock(db)
    _check_claims(db, org_id, name, partner, own=None)
    domain = Domain(
        org_id=org_id,
        app_id=app_id,
        name=name,
        kind="custom",
        token=secrets.token_hex(16),
        https_redirect=data.https_redirect,
        redirect=data.redirect,
        max_body_mb=data.max_body_mb,
        timeout_seconds=data.timeout_seconds,
        created_at=utcnow(),
    )
    db.add(domain)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise FieldConflict("name", f"{name} is already a domain of this organization") from None
    return domain


def update_domain(
    db: Session, kernel: Kernel, *, org_id: int, domain_id: int, data: DomainUpdate
) -> tuple[Domain, list[str]]:
    """Apply the options present in ``data``; return the domain and what changed."""
    domain = get_domain(db, org_id, domain_id, for_update=True)
    if data.name is not msgspec.UNSET:
        try:
            same = check_domain(data.name, wildcard=True) == domain.name
        except RuleError:
            same = False
        if not same:
            raise FieldError(
                "name",
                "a domain's name never changes: add the new name, then remove this one"
                if domain.kind == "custom"
                else "a default domain's name never changes",
            )
    values: dict[str, Any] = {
        f: v
        for f in ("https_redirect", "redirect", "max_body_mb", "timeout_seconds")
        if (v := getattr(data, f)) is not msgspec.UNSET
    }
    if "redirect" in values and values["redirect"] != domain.redirect:
        if domain.kind == "default" and values["redirect"] != "none":
            raise FieldError("redirect", "none for a default domain")
        partner = check_partner(domain.name, values["redirect"])
        if partner is not None:
            _check_reserved(kernel.settings, domain.name, partner)
            claims_lock(db)
            _check_claims(db, org_id, domain.name, partner, own=domain.id)
    changed = [f for f, v in values.items() if getattr(domain, f) != v]
    for field in changed:
        setattr(domain, field, values[field])
    if changed:
        db.flush()
    return domain, changed


def remove_domain(db: Session, *, org_id: int, domain_id: int) -> Domain:
    """Delete a custom domain (a default one goes only with its app)."""
    domain = get_domain(db, org_id, domain_id, for_update=True)
    if domain.kind == "default":
        raise Conflict(
            f"domain {domain_id} is the app's default domain: it cannot be removed "
            "(it goes with the app)"
        )
    db.delete(domain)
    db.flush()
    return domain


# Verification -------------------------------------------------------------------------------


@dataclass
class Outcome:
    verified: bool = False
    #: Already active before this lookup.
    already: bool = False
    error: str = ""
    conflict: GakwayaError | None = None


def record_lookup(db: Session, domain: Domain, lookup: TxtLookup) -> Outcome:
    """Store what a TXT lookup found; activate the domain when it holds the token and
    no other organization proved the name (or its redirect's) meanwhile."""
    if domain.verified_at is not None:
        return Outcome(already=True)
    now = utcnow()
    domain.verify_checked_at = now
    if not lookup.has(domain.token):
        domain.verify_error = lookup.describe(domain.token)
        return Outcome(error=domain.verify_error)
    claims_lock(db)
    try:
        _check_claims(
            db,
            domain.org_id,
            domain.name,
            redirect_partner(domain.name, domain.redirect),
            own=domain.id,
        )
    except FieldConflict as exc:
        domain.verify_error = exc.detail
        return Outcome(error=exc.detail, conflict=exc)
    domain.verified_at = now
    domain.verify_error = ""
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        domain.verified_at = None
        domain.verify_error = f"name: {CLAIMED}"
        return Outcome(error=domain.verify_error, conflict=FieldConflict("name", CLAIMED))
    return Outcome(verified=True)


def challenge_of(kernel: Kernel, org_id: int, domain_id: int) -> tuple[str, str, bool]:
    """(TXT record, token, active) of a domain, read outside the writing transaction:
    the DNS lookup must not hold the database's write lock."""
    with kernel.db.session() as db:
        domain = get_domain(db, org_id, domain_id)
        return challenge_record(domain.name), domain.token, domain.verified_at is not None


# The proxy's question ---------------------------------------------------------------------


def is_served(db: Session, settings: Settings, value: str) -> bool:
    """Whether ``value`` is a name the panel serves now: the panel's own domain, or an
    active domain (or the name its redirect answers, or a child of an active wildcard)
    of an app that runs a release. Caddy's on-demand TLS asks before getting a
    certificate, so nobody makes it request certificates for names we do not serve."""
    try:
        name = check_domain(value)
    except RuleError:
        return False
    if settings.panel_domain and name == settings.panel_domain:
        return True
    candidates = claim_candidates([name])
    parent = name.split(".", 1)[1]
    if "." in parent:
        candidates.add("*." + parent)
    rows = db.execute(
        select(Domain.name, Domain.redirect)
        .join(App, App.id == Domain.app_id)
        .where(
            Domain.name.in_(sorted(candidates)),
            Domain.verified_at.is_not(None),
            App.desired_state == "running",
            App.current_release_id.is_not(None),
        )
    )
    for other, redirect in rows:
        if name in claimed_names(other, redirect) or other == "*." + parent:
            return True
    return False


# Default domains --------------------------------------------------------------------------


def default_name(base: str, app_name: str, env_name: str, app_id: int, *, suffixed: bool) -> str:
    """``<app>-<env>.<base>``; with ``suffixed`` (or when the label would exceed DNS's
    63 characters) ``-<app id>`` is added to the label."""
    label = f"{app_name}-{env_name}"
    if suffixed or len(label) > 63:
        suffix = f"-{app_id}"
        label = label[: 63 - len(suffix)].rstrip("-") + suffix
    return f"{label}.{base}"


def ensure_default_domains(kernel: Kernel, *, app_ids: Sequence[int] | None = None) -> int:
    """Give each app (of ``app_ids``, else every app) its default domain when
    ``proxy_base_domain`` is set and it has none yet; return how many were made.
    Idempotent, and safe to run in several processes at once (claims lock)."""
    base = kernel.settings.proxy_base_domain
    if not base:
        return 0
    made = 0
    with kernel.db.transaction() as db:
        claims_lock(db)
        query = (
            select(App.id, App.org_id, App.name, Environment.name)
            .join(Environment, Environment.id == App.environment_id)
            .where(~exists().where(Domain.app_id == App.id, Domain.kind == "default"))
        )
        if app_ids is not None:
            query = query.where(App.id.in_(list(app_ids)))
        for app_id, org_id, app_name, env_name in db.execute(query).all():
            name = _free_default_name(db, kernel.settings, base, app_name, env_name, app_id)
            if name is None:
                log.warning("app %s: no default domain could be named under %s", app_id, base)
                continue
            now = utcnow()
            db.add(
                Domain(
                    org_id=org_id,
                    app_id=app_id,
                    name=name,
                    kind="default",
                    token="",
                    verified_at=now,
                    created_at=now,
                )
            )
            try:
                with db.begin_nested():
                    db.flush()
            except IntegrityError:
                log.warning("app %s: default domain %s was taken meanwhile", app_id, name)
                continue
            made += 1
    return made


def _free_default_name(
    db: Session, settings: Settings, base: str, app_name: str, env_name: str, app_id: int
) -> str | None:
    for suffixed in (False, True):
        name = default_name(base, app_name, env_name, app_id, suffixed=suffixed)
        try:
            name = check_domain(name)
        except RuleError:
            continue
        taken = name == settings.panel_domain or (
            db.scalar(select(Domain.id).where(Domain.name == name).limit(1)) is not None
        )
        if not taken:
            return name
    return None


# Routes -------------------------------------------------------------------------------------


def refresh_routes(kernel: Kernel) -> str:
    """Apply the desired routes to every proxy now; "" or why it failed (the reconciler
    applies them again within a period)."""
    from gakwaya.deploy.runtime import apply_routes, proxies

    if not proxies(kernel):
        return ""
    try:
        apply_routes(kernel)
    except (ProviderError, GakwayaError) as exc:
        log.warning("routes not applied: %s", exc)
        return str(exc) or type(exc).__name__
    return ""


def certificate_statuses(
    provider: CertificateIssuer, names: Sequence[str]
) -> dict[str, CertificateStatus]:
    return {s.domain: s for s in provider.status(domains=list(names))}
