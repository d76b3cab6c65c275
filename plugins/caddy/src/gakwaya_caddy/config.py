"""Routes to Caddy's JSON config and back.

What is ours in a Caddy config (everything else, e.g. an operator's own servers, is
left as it is):

- ``apps.http.servers.gakwaya``: HTTPS on ``https_port``, one route per domain with
  ``tls`` (host matcher → optional body limit → reverse proxy), and its
  ``redirect_from`` hosts (308 to the domain);
- ``apps.http.servers.gakwaya_http``: plain HTTP on ``http_port``: redirects to HTTPS,
  and the domains proxied on plain HTTP (``tls=False``, or ``https_redirect=False``);
- ``apps.tls.automation.policies`` whose ``@id`` starts with ``gakwaya`` (put first,
  they name their subjects), and ``apps.tls.automation.on_demand`` when its ``@id`` is
  ours;
- ``apps.tls.certificates.load_storage`` when its ``@id`` is ours (or there is none):
  the stored certificates of our domains, preloaded (see
  :func:`gakwaya_caddy.certs.preload_pair`);
- ``logging.logs.gakwaya_tls`` (certificate events, read by ``certs:acme``);
- ``storage`` (see :func:`merge`).

Each route of ours carries ``"@id": "gakwaya:<role>:<app>:<domain>"`` (neither an
app key nor a domain contains ``:``): that is where :func:`parse` finds the app a
domain belongs to. Everything else :func:`parse` reads from what Caddy actually runs,
then keeps a route only if building it again gives exactly the live JSON, so any hand
change makes the route differ from the desired one and the reconciler re-applies it.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gakwaya_caddy.certs import preload_pair
from gakwaya_caddy.settings import CaddySettings, parse_seconds, seconds
from gakwaya_sdk.domains import check_domain
from gakwaya_sdk.providers import ProviderError, Route
from gakwaya_sdk.sources import RuleError

SERVER_HTTPS = "gakwaya"
SERVER_HTTP = "gakwaya_http"
LOGGER = "gakwaya_tls"
ID_PREFIX = "gakwaya"
#: Loggers whose events tell a certificate's fate (Caddy 2.6 names).
TLS_LOGGERS = ["tls.obtain", "tls.renew", "http.acme_client"]

#: How long a request may keep trying upstreams when one cannot be reached (a
#: replica stopped between two health checks, a switch in progress), and how long
#: it waits between two tries.
TRY_DURATION = "5s"
TRY_INTERVAL = "50ms"

APP_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
UPSTREAM_PATTERN = re.compile(rf"^(?P<host>{_LABEL}(?:\.{_LABEL})*):(?P<port>[1-9][0-9]{{0,4}})$")
IPV6_UPSTREAM_PATTERN = re.compile(r"^\[(?P<host>[0-9A-Fa-f:.]{2,45})\]:(?P<port>[1-9][0-9]{0,4})$")
_DOTTED = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")
#: A health-check path: what an HTTP request line can carry without escaping, minus
#: everything a shell or a template would read (``;``, ``$``, quotes, backticks,
#: parentheses, braces, which are Caddy placeholders), spaces and control characters.
HEALTH_PATH_PATTERN = re.compile(r"^/[A-Za-z0-9._~%/=&?+,:@!*-]{0,1023}$")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
MAX_UPSTREAMS = 64
MAX_REDIRECT_FROM = 16
MIN_SECONDS, MAX_SECONDS = 0.01, 86400.0
#: Largest body limit, in bytes: Caddy's JSON numbers are read back as float64.
MAX_BODY_BYTES = 10**15

TOO_LARGE = {
    "handler": "static_response",
    "status_code": 413,
    "body": "Request body too large.\n",
    "close": True,
}
#: Caddy 2.6's reverse proxy answers a body cut by ``request_body`` (a chunked upload
#: past the limit) with 502; this error route turns it into the 413 it is.
ERRORS = {
    "routes": [
        {
            "match": [
                {"vars_regexp": {"{http.error.message}": {"pattern": "request body too large"}}}
            ],
            "handle": [TOO_LARGE],
        }
    ]
}


def _refuse(route: Any, rule: str) -> ProviderError:
    app = getattr(route, "app", "?")
    return ProviderError(f"route of app {app!r}: {rule}")


def check_upstream(route: Route, value: object) -> str:
    if not isinstance(value, str):
        raise _refuse(route, f"upstream {value!r} must be a string 'host:port'")
    bracketed = IPV6_UPSTREAM_PATTERN.fullmatch(value)
    if bracketed is not None:  # the panel itself, listening on "::", is reached on [::1]
        try:
            ipaddress.IPv6Address(bracketed["host"])
        except ValueError:
            raise _refuse(route, f"upstream {value!r}: not an IPv6 address") from None
        if 1 <= int(bracketed["port"]) <= 65535:
            return value
    match = UPSTREAM_PATTERN.fullmatch(value)
    if match is None or len(match["host"]) > 253 or not 1 <= int(match["port"]) <= 65535:
        raise _refuse(
            route,
            f"upstream {value!r} must be 'host:port' with an IPv4 address, a host name "
            "(letters, digits, '-' and '.') or a bracketed IPv6 address, and a port between "
            "1 and 65535",
        )
    host = match["host"]
    if _DOTTED.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _refuse(route, f"upstream {value!r}: {host!r} is not an IPv4 address") from None
    return value


def check_health_path(route: Route, value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not HEALTH_PATH_PATTERN.fullmatch(value)
        or _PERCENT.search(value)
        or ".." in value.split("?", 1)[0].split("/")
    ):
        raise _refuse(
            route,
            f"health_path {value!r} must be a path starting with '/': letters, digits and "
            "._~%/=&?+,:@!*- (no spaces, control characters, quotes, ';', '$', braces or "
            "'..' segments; '%' only as %XX)",
        )
    return value


def _check_seconds(route: Route, name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not MIN_SECONDS <= value <= MAX_SECONDS
    ):
        raise _refuse(
            route,
            f"{name} {value!r} must be a number of seconds "
            f"between {MIN_SECONDS} and {MAX_SECONDS:g}",
        )


def _check_host(route: Route, what: str, value: object, *, wildcard: bool) -> str:
    if not isinstance(value, str):
        raise _refuse(route, f"{what} {value!r} must be a string")
    try:
        canonical = check_domain(value, wildcard=wildcard)
    except RuleError as exc:
        raise _refuse(route, f"{what} {value!r}: {exc}") from None
    if canonical != value:
        raise _refuse(
            route, f"{what} {value!r} must be given in its IDNA ASCII lower-case form {canonical!r}"
        )
    return canonical


def check_route(route: object, *, wildcard: bool) -> Route:
    """The route, if every field is fit for Caddy's config; else ProviderError naming
    the route, the field and the rule."""
    if not isinstance(route, Route):
        raise ProviderError(f"{route!r} is not a gakwaya_sdk.providers.Route")
    if not isinstance(route.app, str) or not APP_PATTERN.fullmatch(route.app):
        raise _refuse(
            route, "app must be 1-100 letters, digits, '_', '.' or '-', starting alphanumeric"
        )
    _check_host(route, "domain", route.domain, wildcard=wildcard)
    if route.port is not None:
        raise _refuse(route, "a route has a domain or a port, never both")
    for name in ("tls", "https_redirect"):
        if not isinstance(getattr(route, name), bool):
            raise _refuse(route, f"{name} must be true or false")
    if isinstance(route.upstreams, str | bytes) or not isinstance(route.upstreams, Sequence):
        raise _refuse(route, "upstreams must be a list of 'host:port'")
    if len(route.upstreams) > MAX_UPSTREAMS:
        raise _refuse(route, f"at most {MAX_UPSTREAMS} upstreams")
    for upstream in route.upstreams:
        check_upstream(route, upstream)
    if isinstance(route.redirect_from, str | bytes) or not isinstance(
        route.redirect_from, Sequence
    ):
        raise _refuse(route, "redirect_from must be a list of domains")
    if len(route.redirect_from) > MAX_REDIRECT_FROM:
        raise _refuse(route, f"at most {MAX_REDIRECT_FROM} redirect_from domains")
    for host in route.redirect_from:
        _check_host(route, "redirect_from", host, wildcard=False)
        if host == route.domain:
            raise _refuse(route, f"redirect_from {host!r} is the route's own domain")
    check_health_path(route, route.health_path)
    _check_seconds(route, "health_interval", route.health_interval)
    _check_seconds(route, "health_timeout", route.health_timeout)
    _check_seconds(route, "timeout", route.timeout, optional=True)
    body = route.max_body_bytes
    if body is not None and (
        isinstance(body, bool) or not isinstance(body, int) or not 1 <= body <= MAX_BODY_BYTES
    ):
        raise _refuse(
            route,
            f"max_body_bytes {body!r} must be a whole number of bytes from 1 to {MAX_BODY_BYTES}",
        )
    return route


def domain_routes(
    routes: Sequence[object], *, dns_challenge: Callable[[str], Mapping[str, Any]] | None
) -> list[Route]:
    """The routes Caddy serves (those with a domain), checked, each host claimed once,
    in serving order: exact names before wildcards, then by name.

    ``dns_challenge`` is the DNS provider's (None: wildcards are refused)."""
    kept: list[Route] = []
    owner: dict[str, str] = {}
    for route in routes:
        if isinstance(route, Route) and route.domain == "":
            continue  # a port route: the port forwarder's
        checked = check_route(route, wildcard=dns_challenge is not None)
        for host in [checked.domain, *checked.redirect_from]:
            other = owner.get(host)
            if other is not None:
                raise _refuse(checked, f"{host!r} is already routed by the route of {other!r}")
            owner[host] = checked.domain
        kept.append(checked)
    return sorted(kept, key=lambda r: (r.domain.startswith("*."), r.domain))


# Building ------------------------------------------------------------------------------


def _id(role: str, route: Route) -> str:
    return f"{ID_PREFIX}:{role}:{route.app}:{route.domain}"


def greater_than(limit: int) -> str:
    """An RE2 pattern matching exactly the decimal numbers above ``limit`` (leading
    zeros allowed, as Go reads a Content-Length)."""
    digits = str(limit)
    size = len(digits)
    options = [f"[1-9][0-9]{{{size},}}"]
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = size - i - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            options.append(f"{digits[:i]}[{int(digit) + 1}-9]{tail}")
    return "^0*(?:" + "|".join(options) + ")$"


def _proxy(route: Route) -> dict[str, Any]:
    active: dict[str, Any] = {
        "interval": seconds(route.health_interval),
        "timeout": seconds(route.health_timeout),
    }
    if route.health_path is not None:
        active["uri"] = route.health_path
    handler: dict[str, Any] = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": u} for u in route.upstreams],
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "try_duration": TRY_DURATION,
            "try_interval": TRY_INTERVAL,
            # Retry only what never reached an upstream (Caddy always retries a failed
            # dial): a request that timed out is not sent again, and answers 504.
            "retry_match": [{"method": []}],
        },
        # Active checks only: an interval and timeout without a uri check nothing
        # (Caddy 2.6 starts the checker only with a uri), and passive checks would let
        # any client take an upstream out (a too-large body counts as its failure).
        "health_checks": {"active": active},
    }
    if route.timeout is not None:
        handler["transport"] = {
            "protocol": "http",
            "response_header_timeout": seconds(route.timeout),
        }
    return handler


def _site_routes(route: Route, role: str, limit_role: str) -> list[dict[str, Any]]:
    """The body-limit pre-check (a declared Content-Length over the limit never reaches
    the app) and the proxied site."""
    host = {"host": [route.domain]}
    handle: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    if route.max_body_bytes is not None:
        out.append(
            {
                "@id": _id(limit_role, route),
                "match": [
                    {
                        "host": [route.domain],
                        "header_regexp": {
                            "Content-Length": {"pattern": greater_than(route.max_body_bytes)}
                        },
                    }
                ],
                "handle": [TOO_LARGE],
                "terminal": True,
            }
        )
        handle.append({"handler": "request_body", "max_size": route.max_body_bytes})
    handle.append(_proxy(route))
    out.append({"@id": _id(role, route), "match": [host], "handle": handle, "terminal": True})
    return out


def _redirect(route_id: str, hosts: Sequence[str], target: str) -> dict[str, Any]:
    return {
        "@id": route_id,
        "match": [{"host": list(hosts)}],
        "handle": [
            {
                "handler": "static_response",
                "status_code": 308,
                "headers": {"Location": [target + "{http.request.uri}"]},
            }
        ],
        "terminal": True,
    }


def _origin(scheme: str, domain: str, port: int) -> str:
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{domain}" + ("" if port == default else f":{port}")


def _fallback(server: str) -> dict[str, Any]:
    return {
        "@id": f"{ID_PREFIX}:fallback:{server}",
        "handle": [
            {"handler": "static_response", "status_code": 404, "body": "No site is served here.\n"}
        ],
        "terminal": True,
    }


def _issuer(settings: CaddySettings, challenges: Mapping[str, Any]) -> dict[str, Any]:
    issuer: dict[str, Any] = {"module": "acme", "ca": settings.acme_ca}
    if settings.acme_email:
        issuer["email"] = settings.acme_email
    if settings.acme_trusted_roots:
        issuer["trusted_roots_pem_files"] = [settings.acme_trusted_roots]
    issuer["challenges"] = dict(challenges)
    return issuer


@dataclass
class Parts:
    """What :func:`build` makes: the pieces of a Caddy config that are ours."""

    servers: dict[str, Any] = field(default_factory=dict)
    policies: list[dict[str, Any]] = field(default_factory=list)
    on_demand: dict[str, Any] | None = None
    log: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    #: Every name Caddy gets a certificate for (their stored ones are preloaded).
    tls_names: list[str] = field(default_factory=list)


def build(
    routes: Sequence[Route],
    settings: CaddySettings,
    *,
    dns_challenge: Callable[[str], Mapping[str, Any]] | None,
) -> Parts:
    """Our parts of the config for already-checked ``routes`` (:func:`domain_routes`)."""
    https_routes: list[dict[str, Any]] = []
    http_routes: list[dict[str, Any]] = []
    tls_hosts: list[str] = []
    wildcard_policies: list[dict[str, Any]] = []
    wildcards: list[str] = []
    https_port, http_port = settings.https_port, settings.http_port
    for route in routes:
        if route.tls:
            https_routes += _site_routes(route, "site", "limit")
            secure = _origin("https", route.domain, https_port)
            if route.redirect_from:
                https_routes.append(_redirect(_id("from", route), route.redirect_from, secure))
            if route.https_redirect:
                http_routes.append(
                    _redirect(
                        _id("http-redirect", route), [route.domain, *route.redirect_from], secure
                    )
                )
            else:
                http_routes += _site_routes(route, "http-site", "http-limit")
                if route.redirect_from:
                    plain = _origin("http", route.domain, http_port)
                    http_routes.append(
                        _redirect(_id("http-from", route), route.redirect_from, plain)
                    )
            if route.domain.startswith("*."):
                assert dns_challenge is not None  # domain_routes refused it otherwise
                wildcard_policies.append(
                    {
                        "@id": f"{ID_PREFIX}_policy:{route.domain}",
                        "subjects": [route.domain],
                        "issuers": [_issuer(settings, {"dns": dict(dns_challenge(route.domain))})],
                    }
                )
                tls_hosts += route.redirect_from
                wildcards.append(route.domain)
            else:
                tls_hosts += [route.domain, *route.redirect_from]
        else:
            role = "plain" if route.https_redirect else "plain-noredirect"
            http_routes += _site_routes(route, role, "plain-limit")
            if route.redirect_from:
                plain = _origin("http", route.domain, http_port)
                http_routes.append(_redirect(_id("http-from", route), route.redirect_from, plain))
    parts = Parts()
    if https_routes:
        parts.servers[SERVER_HTTPS] = {
            "listen": [f":{https_port}"],
            "routes": [*https_routes, _fallback("https")],
            "errors": copy.deepcopy(ERRORS),
            # Our own HTTP server answers plain HTTP (redirects, HTTP-only domains):
            # Caddy's automatic redirects would claim the same port. The preloaded
            # certificates must not stop Caddy from managing (renewing) them.
            "automatic_https": {"disable_redirects": True, "ignore_loaded_certificates": True},
        }
    if http_routes:
        parts.servers[SERVER_HTTP] = {
            "listen": [f":{http_port}"],
            "routes": [*http_routes, _fallback("http")],
            "errors": copy.deepcopy(ERRORS),
            # Plain HTTP only; Caddy still answers ACME HTTP-01 challenges here.
            "automatic_https": {"disable": True},
        }
    challenges = {
        "http": {"alternate_port": http_port},
        "tls-alpn": {"alternate_port": https_port},
    }
    if tls_hosts:
        policy: dict[str, Any] = {
            "@id": f"{ID_PREFIX}_policy",
            "subjects": tls_hosts,
            "issuers": [_issuer(settings, challenges)],
        }
        if settings.on_demand_tls:
            policy["on_demand"] = True
        parts.policies.append(policy)
    parts.policies += wildcard_policies
    if settings.on_demand_tls:
        parts.on_demand = {"@id": f"{ID_PREFIX}_on_demand", "ask": settings.on_demand_ask_url}
    parts.log = {
        "writer": {
            "output": "file",
            "filename": str(settings.tls_log),
            "roll_size_mb": 10,
            "roll_keep": 2,
        },
        "encoder": {"format": "json"},
        "level": "INFO",
        "include": list(TLS_LOGGERS),
    }
    parts.storage = {"module": "file_system", "root": str(settings.storage_dir)}
    parts.tls_names = sorted(set(tls_hosts) | set(wildcards))
    return parts


# Merging -------------------------------------------------------------------------------


def _ours(item: object) -> bool:
    return isinstance(item, dict) and str(item.get("@id", "")).startswith(ID_PREFIX)


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def merge(live: Any, parts: Parts, settings: CaddySettings) -> dict[str, Any]:
    """``live`` with our parts replaced by ``parts``, everything else as it was.

    Storage is global to a Caddy: it is set for a managed Caddy, when the operator
    chose ``storage_dir``, or when the config has none; an existing Caddy's own
    storage is kept otherwise (``certs:acme`` then reads that one)."""
    config: dict[str, Any] = copy.deepcopy(live) if isinstance(live, dict) else {}
    if "admin" not in config:
        # A config without one moves the admin API to Caddy's default address: keep it
        # where the panel reaches it.
        config["admin"] = {"listen": settings.admin_address}
    apps = config.get("apps")
    http_app = apps.get("http") if isinstance(apps, dict) else None
    servers = http_app.get("servers") if isinstance(http_app, dict) else None
    if isinstance(servers, dict):
        servers.pop(SERVER_HTTPS, None)
        servers.pop(SERVER_HTTP, None)
    if parts.servers:
        _dict(_dict(_dict(config, "apps"), "http"), "servers").update(copy.deepcopy(parts.servers))

    tls_app = apps.get("tls") if isinstance(apps, dict) else None
    automation = tls_app.get("automation") if isinstance(tls_app, dict) else None
    theirs: list[Any] = []
    if isinstance(automation, dict):
        policies = automation.get("policies")
        theirs = [p for p in policies if not _ours(p)] if isinstance(policies, list) else []
        if isinstance(policies, list):
            if theirs:
                automation["policies"] = theirs
            else:
                del automation["policies"]
        if _ours(automation.get("on_demand")):
            del automation["on_demand"]
    if parts.policies:
        automation = _dict(_dict(_dict(config, "apps"), "tls"), "automation")
        automation["policies"] = copy.deepcopy(parts.policies) + theirs
    if parts.on_demand is not None:
        automation = _dict(_dict(_dict(config, "apps"), "tls"), "automation")
        if "on_demand" not in automation:
            automation["on_demand"] = dict(parts.on_demand)

    _dict(_dict(config, "logging"), "logs")[LOGGER] = copy.deepcopy(parts.log)
    if settings.managed or settings.storage_explicit or "storage" not in config:
        config["storage"] = dict(parts.storage)
    _preload(config, parts.tls_names)
    return config


def _preload(config: dict[str, Any], names: Sequence[str]) -> None:
    """Put the stored certificates of ``names`` in ``load_storage`` (ours, or none
    yet), so a config change never has Caddy handshake without them; read from the
    storage the config names, when it is a file system the panel can read."""
    root = storage_root(config)
    pairs = []
    if root is not None:
        for name in names:
            pair = preload_pair(Path(root), name)
            if pair is not None:
                pairs.append({"certificate": pair[0], "key": pair[1]})
    apps = config.get("apps")
    tls_app = apps.get("tls") if isinstance(apps, dict) else None
    loaders = tls_app.get("certificates") if isinstance(tls_app, dict) else None
    current = loaders.get("load_storage") if isinstance(loaders, dict) else None
    if current is not None and not _ours(current):
        return  # the operator's own loader: left as it is, nothing preloaded
    if isinstance(tls_app, dict) and isinstance(loaders, dict) and current is not None:
        del loaders["load_storage"]
        if not loaders:
            del tls_app["certificates"]
    if pairs:
        certificates = _dict(_dict(_dict(config, "apps"), "tls"), "certificates")
        certificates["load_storage"] = {"@id": f"{ID_PREFIX}_preload", "pairs": pairs}


def storage_root(config: Any) -> str | None:
    """The root of a config's ``file_system`` storage, if that is what it uses."""
    storage = config.get("storage") if isinstance(config, dict) else None
    if isinstance(storage, dict) and storage.get("module") == "file_system":
        root = storage.get("root")
        return root if isinstance(root, str) and root.startswith("/") else None
    return None


# Parsing -------------------------------------------------------------------------------


def _our_routes(config: Any, server: str) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(app, domain) → role → route JSON, for the routes of ours in ``server``."""
    try:
        routes = config["apps"]["http"]["servers"][server]["routes"]
    except (KeyError, TypeError):
        return {}
    found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    if not isinstance(routes, list):
        return found
    for item in routes:
        if not _ours(item):
            continue
        parts = str(item["@id"]).split(":", 3)
        if len(parts) == 4 and parts[0] == ID_PREFIX:
            found.setdefault((parts[2], parts[3]), {})[parts[1]] = item
    return found


def _hosts(item: Mapping[str, Any] | None) -> list[str]:
    try:
        hosts = item["match"][0]["host"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return []
    return [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []


def _proxied(app: str, domain: str, item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Route fields a site route's handlers carry, or None if it is not one."""
    handlers = item.get("handle")
    if not isinstance(handlers, list):
        return None
    max_body: Any = None
    proxy: Mapping[str, Any] | None = None
    for handler in handlers:
        if not isinstance(handler, dict):
            return None
        if handler.get("handler") == "request_body":
            max_body = handler.get("max_size")
        elif handler.get("handler") == "reverse_proxy":
            proxy = handler
    if proxy is None:
        return None
    upstreams = proxy.get("upstreams")
    checks = proxy.get("health_checks")
    active = checks.get("active") if isinstance(checks, dict) else None
    transport = proxy.get("transport")
    if not isinstance(upstreams, list) or not isinstance(active, dict):
        return None
    interval = parse_seconds(active.get("interval"))
    health_timeout = parse_seconds(active.get("timeout"))
    timeout: float | None = None
    if isinstance(transport, dict) and "response_header_timeout" in transport:
        timeout = parse_seconds(transport["response_header_timeout"])
        if timeout is None:
            return None
    if interval is None or health_timeout is None:
        return None
    if isinstance(max_body, float) and max_body.is_integer():
        max_body = int(max_body)
    return {
        "app": app,
        "domain": domain,
        "upstreams": [u.get("dial") if isinstance(u, dict) else None for u in upstreams],
        "health_path": active.get("uri"),
        "health_interval": interval,
        "health_timeout": health_timeout,
        "timeout": timeout,
        "max_body_bytes": max_body,
    }


def candidates(config: Any) -> list[Route]:
    """The routes the live config looks like it serves (not yet checked against it)."""
    secure = _our_routes(config, SERVER_HTTPS)
    plain = _our_routes(config, SERVER_HTTP)
    found: list[Route] = []
    for key in sorted(set(secure) | set(plain)):
        app, domain = key
        roles = {**plain.get(key, {}), **{f"s:{k}": v for k, v in secure.get(key, {}).items()}}
        if "s:site" in roles:
            fields = _proxied(app, domain, roles["s:site"])
            tls, https_redirect = True, "http-redirect" in roles
            redirect_from = _hosts(roles.get("s:from"))
        elif "plain" in roles or "plain-noredirect" in roles:
            fields = _proxied(app, domain, roles.get("plain") or roles["plain-noredirect"])
            tls, https_redirect = False, "plain" in roles
            redirect_from = _hosts(roles.get("http-from"))
        else:
            continue
        if fields is None:
            continue
        try:
            found.append(
                Route(
                    **fields,
                    tls=tls,
                    https_redirect=https_redirect,
                    # The default (a Route built without it) when empty.
                    redirect_from=redirect_from or (),
                )
            )
        except TypeError:
            continue
    return found


def parse(
    config: Any,
    settings: CaddySettings,
    *,
    dns_challenge: Callable[[str], Mapping[str, Any]] | None,
) -> list[Route]:
    """The domain routes Caddy serves exactly as :func:`build` would write them.

    A route whose live JSON differs from what building it again gives (a hand edit,
    a route missing a piece) is left out; if all routes are intact but a shared part
    of ours differs (a server's listener or options, a TLS policy, the TLS log, the
    storage), none is reported: either way the reconciler sees a difference and
    applies the desired set again."""
    found: list[Route] = []
    for candidate in candidates(config):
        try:
            found.append(check_route(candidate, wildcard=dns_challenge is not None))
        except ProviderError:
            continue
    try:
        routes = domain_routes(found, dns_challenge=dns_challenge)
    except ProviderError:
        return []
    try:
        parts = build(routes, settings, dns_challenge=dns_challenge)
    except ProviderError:
        return []
    expected = merge(config, parts, settings)
    if expected == config:
        return routes
    kept: list[Route] = []
    for route in routes:
        key = (route.app, route.domain)
        ok = True
        for server in (SERVER_HTTPS, SERVER_HTTP):
            want = _our_routes(expected, server).get(key, {})
            have = _our_routes(config, server).get(key, {})
            if want != have:
                ok = False
        if ok:
            kept.append(route)
    return [] if len(kept) == len(routes) else kept
