"""What domains add to the desired routes, and the names a domain answers.

Kept free of the deploy package's imports: :func:`gakwaya.deploy.runtime.desired_routes`
calls :func:`domain_routes` and :func:`panel_route` with the upstreams it computed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gakwaya.db.models import App, Domain
from gakwaya_sdk.providers import Route

if TYPE_CHECKING:
    from gakwaya.settings import Settings

#: The label under which a domain's ownership TXT record lives.
CHALLENGE_LABEL = "_gakwaya-challenge"
#: Path of the panel's own health check, which the proxy polls on the panel's route.
PANEL_HEALTH_PATH = "/healthz"
MIB = 1024 * 1024


def redirect_partner(name: str, redirect: str) -> str | None:
    """The other name a redirect answers: ``www.NAME`` for ``www_to_apex``, NAME
    without its ``www.`` for ``apex_to_www``; None without a redirect."""
    if redirect == "www_to_apex":
        return "www." + name
    if redirect == "apex_to_www" and name.startswith("www."):
        return name[4:]
    return None


def claimed_names(name: str, redirect: str) -> list[str]:
    """Every name a domain answers: its own and its redirect's."""
    partner = redirect_partner(name, redirect)
    return [name] if partner is None else [name, partner]


def claim_candidates(names: Sequence[str]) -> set[str]:
    """Names of the rows that could answer one of ``names``: the names themselves, and
    those whose www/apex redirect would answer them."""
    out = set(names)
    for n in names:
        out.add("www." + n)
        if n.startswith("www."):
            out.add(n[4:])
    return out


def challenge_record(name: str) -> str:
    """The TXT record proving ownership of ``name`` (a wildcard's: its parent's)."""
    return f"{CHALLENGE_LABEL}.{name.removeprefix('*.')}"


def panel_upstream(settings: Settings) -> str:
    """Where the proxy reaches the panel's own listener: a wildcard listen address is
    reached on loopback."""
    host = settings.host
    if host in ("0.0.0.0", ""):  # noqa: S104 (a listen address, not a bind)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"{host}:{settings.port}"


def panel_route(settings: Settings) -> Route | None:
    if not settings.panel_domain:
        return None
    return Route(
        app="panel",
        upstreams=[panel_upstream(settings)],
        domain=settings.panel_domain,
        tls=settings.domains_tls,
        https_redirect=True,
        health_path=PANEL_HEALTH_PATH,
    )


@dataclass(frozen=True)
class ActiveDomain:
    app_id: int
    name: str
    https_redirect: bool
    redirect: str
    max_body_mb: int | None
    timeout_seconds: float | None
    health_kind: str
    health_path: str
    health_interval: float
    health_timeout: float


def active_domains(db: Session) -> list[ActiveDomain]:
    """Every verified (or default) domain, with its app's health check."""
    rows = db.execute(
        select(
            Domain.app_id,
            Domain.name,
            Domain.https_redirect,
            Domain.redirect,
            Domain.max_body_mb,
            Domain.timeout_seconds,
            App.health_kind,
            App.health_path,
            App.health_interval,
            App.health_timeout,
        )
        .join(App, App.id == Domain.app_id)
        .where(Domain.verified_at.is_not(None))
        .order_by(Domain.name)
    )
    return [
        ActiveDomain(
            app_id=r.app_id,
            name=r.name,
            https_redirect=r.https_redirect,
            redirect=r.redirect,
            max_body_mb=r.max_body_mb,
            timeout_seconds=r.timeout_seconds,
            health_kind=r.health_kind,
            health_path=r.health_path,
            health_interval=r.health_interval,
            health_timeout=r.health_timeout,
        )
        for r in rows
    ]


def domain_routes(
    settings: Settings,
    domains: Sequence[ActiveDomain],
    upstreams: Mapping[int, tuple[str, Sequence[str]]],
) -> list[Route]:
    """One route per active domain whose app has upstreams (``upstreams``: app id →
    (app key, its healthy instances' addresses))."""
    routes: list[Route] = []
    for d in domains:
        served = upstreams.get(d.app_id)
        if served is None or not served[1]:
            continue
        key, addresses = served
        partner = redirect_partner(d.name, d.redirect)
        routes.append(
            Route(
                app=key,
                upstreams=list(addresses),
                domain=d.name,
                tls=settings.domains_tls,
                https_redirect=d.https_redirect,
                redirect_from=[partner] if partner else [],
                health_path=d.health_path if d.health_kind == "http" else None,
                health_interval=d.health_interval,
                health_timeout=d.health_timeout,
                max_body_bytes=d.max_body_mb * MIB if d.max_body_mb else None,
                timeout=d.timeout_seconds,
            )
        )
    return routes
