"""HTTP routes of domains, and the question Caddy asks before on-demand TLS.

Thin: the middleware has resolved the caller, the organization (404 for non-members)
and the permission; handlers call a service, commit, publish events, then apply the
routes so the proxies serve (or stop serving) the change at once.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext, set_audit_target
from gakwaya.domains import services
from gakwaya.domains.dns import lookup_txt
from gakwaya.domains.events import DomainAdded, DomainRemoved, DomainUpdated, DomainVerified
from gakwaya.domains.schemas import DomainCreate, DomainUpdate, DomainView
from gakwaya.errors import Conflict, NotFound, PermissionDenied
from gakwaya.kernel import Kernel
from gakwaya.orgs.events import commit_and_publish
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, parse_cursor

ORG = "/api/v1/orgs/{org:str}"
DOMAIN = f"{ORG}/domains/{{domain_id:int}}"
AnyRequest = Request[Any, Any, Any]
#: Headers a forwarding proxy adds: a request carrying one came from elsewhere.
FORWARDED_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class AskAnswer(msgspec.Struct, kw_only=True):
    domain: str
    served: bool = True


@get(
    f"{ORG}/apps/{{app_id:int}}/domains",
    operation_id="domains_list",
    tags=["domains"],
    sync_to_thread=True,
    opt={"permission": "domains.read"},
)
def domains_list(
    app_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[DomainView]:
    """The app's domains, newest first, with their stored certificate state."""
    rows, nxt = services.list_domains(
        db, current_org.id, app_id, cursor=parse_cursor(cursor), limit=limit
    )
    default = services.default_names(db, [app_id]).get(app_id)
    return Page(items=[services.domain_view(kernel, d, default) for d in rows], next_cursor=nxt)


@post(
    f"{ORG}/apps/{{app_id:int}}/domains",
    operation_id="domains_create",
    tags=["domains"],
    sync_to_thread=True,
    status_code=201,
    opt={"permission": "domains.write"},
)
def domains_create(
    request: AnyRequest,
    app_id: FromPath[int],
    data: JSONBody[DomainCreate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> DomainView:
    """Add a custom domain. The answer lists the DNS records to create; the domain is
    served once the TXT record is seen (``POST /domains/{id}/verify``, or the
    reconciler within a period)."""
    domain = services.add_domain(db, kernel, org_id=current_org.id, app_id=app_id, data=data)
    view = services.view_of(kernel, db, domain)
    event = DomainAdded(
        org_id=current_org.id, domain_id=domain.id, app_id=app_id, name=domain.name, kind="custom"
    )
    commit_and_publish(db, kernel, [event])
    set_audit_target(request, "domain", domain.id, name=domain.name, app_id=app_id)
    return view


@get(
    DOMAIN,
    operation_id="domains_show",
    tags=["domains"],
    sync_to_thread=True,
    opt={"permission": "domains.read"},
)
def domains_show(
    domain_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> DomainView:
    """The domain, the DNS records to create, and its certificate's state as the
    certificate provider reports it now (the stored state when there is none)."""
    domain = services.get_domain(db, current_org.id, domain_id)
    return services.view_of(kernel, db, domain, live=True)


@patch(
    DOMAIN,
    operation_id="domains_update",
    tags=["domains"],
    sync_to_thread=True,
    opt={"permission": "domains.write"},
)
def domains_update(
    request: AnyRequest,
    domain_id: FromPath[int],
    data: JSONBody[DomainUpdate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> DomainView:
    """Change the options present in the body (the name never changes)."""
    domain, changed = services.update_domain(
        db, kernel, org_id=current_org.id, domain_id=domain_id, data=data
    )
    active, app_id = domain.verified_at is not None, domain.app_id
    default = services.default_names(db, [app_id]).get(app_id)
    events = [
        DomainUpdated(org_id=current_org.id, domain_id=domain_id, app_id=app_id, fields=changed)
    ]
    commit_and_publish(db, kernel, events if changed else [])
    set_audit_target(request, "domain", domain_id, name=domain.name, fields=changed)
    routes_error = services.refresh_routes(kernel) if changed and active else ""
    return services.domain_view(kernel, domain, default, routes_error=routes_error)


@post(
    f"{DOMAIN}/verify",
    operation_id="domains_verify",
    tags=["domains"],
    sync_to_thread=True,
    status_code=200,
    opt={"permission": "domains.write"},
)
def domains_verify(
    request: AnyRequest,
    domain_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> DomainView:
    """Look the TXT record up now. Found: the domain is active and routed. Not found:
    409 saying what was asked of which server and what it answered."""
    record, _token, active = services.challenge_of(kernel, current_org.id, domain_id)
    lookup = None if active else lookup_txt(kernel.settings, record)
    domain = services.get_domain(db, current_org.id, domain_id, for_update=True)
    outcome = (
        services.record_lookup(db, domain, lookup) if lookup else services.Outcome(already=True)
    )
    name, app_id = domain.name, domain.app_id
    default = services.default_names(db, [app_id]).get(app_id)
    events = (
        [DomainVerified(org_id=current_org.id, domain_id=domain_id, app_id=app_id, name=name)]
        if outcome.verified
        else []
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "domain", domain_id, name=name, verified=outcome.verified)
    if outcome.conflict is not None:
        raise outcome.conflict
    if not (outcome.verified or outcome.already):
        raise Conflict(f"domain {name} is not verified yet: {outcome.error}")
    routes_error = services.refresh_routes(kernel) if outcome.verified else ""
    return services.domain_view(kernel, domain, default, routes_error=routes_error)


@delete(
    DOMAIN,
    operation_id="domains_delete",
    tags=["domains"],
    sync_to_thread=True,
    opt={"permission": "domains.delete"},
)
def domains_delete(
    request: AnyRequest,
    domain_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Remove a custom domain; the proxies stop serving it at once (a default domain
    cannot be removed: 409)."""
    domain = services.remove_domain(db, org_id=current_org.id, domain_id=domain_id)
    name, app_id, active = domain.name, domain.app_id, domain.verified_at is not None
    event = DomainRemoved(org_id=current_org.id, domain_id=domain_id, app_id=app_id, name=name)
    commit_and_publish(db, kernel, [event])
    set_audit_target(request, "domain", domain_id, name=name, app_id=app_id)
    if active:
        routes_error = services.refresh_routes(kernel)
        if routes_error:
            set_audit_target(request, "domain", domain_id, name=name, routes_error=routes_error)


def _from_this_host(request: AnyRequest) -> bool:
    client = request.scope.get("client")
    try:
        loopback = client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        loopback = False
    return loopback and not any(h in request.headers for h in FORWARDED_HEADERS)


@get(
    "/api/v1/proxy/ask",
    operation_id="proxy_ask",
    tags=["domains"],
    sync_to_thread=True,
    opt={"public": True},
)
def proxy_ask(
    request: AnyRequest,
    domain: Annotated[str, QueryParameter(description="the name a TLS client asked for")],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
) -> AskAnswer:
    """Caddy's on-demand TLS ``ask``: 200 for a name the panel serves (an active domain
    of a running app, or the panel's own), 404 otherwise. Only for the proxy on this
    host: a client that is not on loopback, or a request a proxy forwarded, gets 403."""
    if not _from_this_host(request):
        raise PermissionDenied("only the proxy on this host may ask (loopback, not forwarded)")
    if not services.is_served(db, kernel.settings, domain):
        raise NotFound("this panel serves no such domain")
    return AskAnswer(domain=domain.lower().rstrip("."))


ROUTES: list[Any] = [
    domains_list,
    domains_create,
    domains_show,
    domains_update,
    domains_verify,
    domains_delete,
    proxy_ask,
]
