"""The kernel middleware: caller, organization, permission, CSRF, audit.

It runs after routing, so it knows the route handler and its ``opt``:

- ``opt["public"]``: no sign-in needed;
- ``opt["permission"]``: required on every route whose path has ``{org}``;
- ``opt["scope"]``: on routes outside an organization, the API-key scope needed;
  without it, API keys are refused there (they belong to one organization);
- ``opt["audit"]``: ``True`` also audits this safe-method route (a secret read);
  ``False`` skips a POST that changes nothing (a lookup whose input must stay out of
  URLs and access logs, like an invitation's token);
- ``opt["superuser"]``: installation-wide route for signed-in superusers only
  (403 for other users and for every API key);
- ``opt["webui"]`` (with ``public``): a dashboard page. It changes nothing itself, it
  calls this API in process, and that call is audited; auditing the page request too
  would write every action twice.

Every mutating request (and every audited read) writes one audit row before the
response goes out, with the outcome taken from the status code.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from litestar.datastructures import Cookie, Headers
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import OperationalError

from gakwaya.apikeys import keys as apikey_format
from gakwaya.auth.principal import OrgContext, Principal
from gakwaya.db.base import utcnow
from gakwaya.db.models import ApiKey, Membership, Organization, User, UserSession
from gakwaya.errors import GakwayaError, NotAuthenticated, NotFound, PermissionDenied
from gakwaya.security.tokens import digest, same
from gakwaya_sdk.permissions import Role, Scope as KeyScope, effective_scopes

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.auth")

SESSION_COOKIE = "gakwaya_session"
CSRF_COOKIE = "gakwaya_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writing last_used_at / last_seen_at on every request would make every read a write.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def session_cookie(kernel: Kernel, token: str, *, max_age: int | None = None) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        httponly=True,
        samesite="lax",
        secure=kernel.settings.secure_cookies,
        path="/",
        max_age=max_age if max_age is not None else kernel.settings.session_ttl_hours * 3600,
    )


def csrf_cookie(kernel: Kernel, token: str, *, max_age: int | None = None) -> Cookie:
    # Readable by the page's own script (double submit); the server checks it against
    # the session row, not against this cookie.
    return Cookie(
        key=CSRF_COOKIE,
        value=token,
        httponly=False,
        samesite="strict",
        secure=kernel.settings.secure_cookies,
        path="/",
        max_age=max_age if max_age is not None else kernel.settings.session_ttl_hours * 3600,
    )


# Built once: a statement object memoizes its cache key, so per request SQLAlchemy
# only binds parameters. Plain table columns on a Connection: no ORM on this path,
# which every request takes.
_users = User.__table__.c
_keys = ApiKey.__table__.c
_sessions = UserSession.__table__.c
_orgs = Organization.__table__.c
_members = Membership.__table__.c

_KEY_LOOKUP = (
    select(
        _keys.id,
        _keys.org_id,
        _keys.scopes,
        _keys.revoked_at,
        _keys.expires_at,
        _keys.last_used_at,
        _users.id.label("user_id"),
        _users.email,
        _users.is_superuser,
    )
    .select_from(ApiKey.__table__.join(User.__table__, _users.id == _keys.user_id))
    .where(_keys.key_hash == bindparam("digest"))
)
_SESSION_LOOKUP = (
    select(
        _sessions.id,
        _sessions.state,
        _sessions.expires_at,
        _sessions.last_seen_at,
        _sessions.csrf_token,
        _users.id.label("user_id"),
        _users.email,
        _users.is_superuser,
    )
    .select_from(UserSession.__table__.join(User.__table__, _users.id == _sessions.user_id))
    .where(_sessions.token_hash == bindparam("digest"))
)
_ORG_LOOKUP = (
    select(_orgs.id, _orgs.slug, _orgs.name, _members.role)
    .select_from(Organization.__table__.join(Membership.__table__, _members.org_id == _orgs.id))
    .where(_orgs.slug == bindparam("slug"), _members.user_id == bindparam("user_id"))
)


class _Trusted:
    def __init__(self, networks: list[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def contains(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)


def client_address(scope: Scope, headers: Headers, trusted: _Trusted) -> str:
    """The peer address, or X-Forwarded-For's client when the peer is a trusted proxy."""
    client = scope.get("client")
    peer = client[0] if client else ""
    if not trusted.networks or not trusted.contains(peer):
        return peer
    forwarded = headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    # Walk from the nearest hop; the first untrusted one is the client.
    for hop in reversed(hops):
        if not trusted.contains(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer


class Resolution:
    __slots__ = ("org", "principal")

    def __init__(self, principal: Principal | None, org: OrgContext | None) -> None:
        self.principal = principal
        self.org = org


class KernelMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    @cached_property
    def trusted(self) -> _Trusted:
        return _Trusted(self.kernel.settings.trusted_proxies)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        opt: dict[str, Any] = dict(getattr(handler, "opt", {}) or {})
        headers = Headers.from_scope(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["client_ip"] = client_address(scope, headers, self.trusted)
        method = scope.get("method", "GET")
        dashboard_page = bool(opt.get("webui") and opt.get("public")) and not str(
            scope.get("path", "")
        ).startswith("/api/")
        audited = (
            bool(opt["audit"]) if "audit" in opt else method not in SAFE_METHODS
        ) and not dashboard_page
        action = getattr(handler, "operation_id", None) or f"{method} {scope.get('path')}"
        path_params = scope.get("path_params") or {}
        if method == "OPTIONS" and getattr(handler, "operation_id", None) is None:
            # Litestar's automatic OPTIONS answer (allowed methods): nothing to guard.
            await next_app(scope, receive, send)
            return

        # What _resolve learnt before refusing: a denied request is audited with
        # its actor and organization, not as anonymous.
        seen: dict[str, Any] = {}
        try:
            resolution = await anyio.to_thread.run_sync(
                self._resolve, headers, str(method), path_params, opt, seen
            )
        except GakwayaError as exc:
            state["principal"] = seen.get("principal")
            state["org"] = seen.get("org")
            if audited:
                await anyio.to_thread.run_sync(
                    self._audit, state, str(action), exc.status_code, path_params
                )
            raise
        state["principal"] = resolution.principal
        state["org"] = resolution.org

        if not audited:
            await next_app(scope, receive, send)
            return

        async def audit_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await anyio.to_thread.run_sync(
                    self._audit, state, str(action), message["status"], path_params
                )
            await send(message)

        await next_app(scope, receive, audit_send)

    # Runs in a worker thread -------------------------------------------------------

    def _resolve(
        self,
        headers: Headers,
        method: str,
        path_params: dict[str, Any],
        opt: dict[str, Any],
        seen: dict[str, Any] | None = None,
    ) -> Resolution:
        seen = {} if seen is None else seen
        with self.kernel.db.engine.connect() as db:
            principal = self._principal(db, headers)
            seen["principal"] = principal
            if principal is not None and principal.via == "session" and method not in SAFE_METHODS:
                sent = headers.get(CSRF_HEADER, "")
                if not sent or not principal.csrf_token or not same(sent, principal.csrf_token):
                    if opt.get("public"):
                        # A public route (login, setup) works without a session: an
                        # unproven cookie is ignored rather than refused.
                        seen["principal"] = None
                        return Resolution(None, None)
                    raise PermissionDenied(
                        "CSRF token missing or wrong: send the value of the "
                        f"'{CSRF_COOKIE}' cookie in the 'X-CSRF-Token' header"
                    )
            if (
                principal is not None
                and principal.scopes is not None
                and method not in SAFE_METHODS
                and principal.scopes <= {KeyScope.READ}
            ):
                # Whatever a route's permission says, a read-only key changes nothing.
                raise PermissionDenied("this API key is read-only; it cannot change anything")
            if opt.get("public"):
                return Resolution(principal, None)
            if principal is None:
                raise NotAuthenticated(
                    "sign in, or send an API key as 'Authorization: Bearer gkw_…'"
                )
            if opt.get("superuser"):
                # Installation-wide administration: a signed-in superuser, never a key.
                if principal.via == "api_key":
                    raise PermissionDenied(
                        "API keys cannot be used on installation-wide routes; "
                        "sign in as a superuser"
                    )
                if not principal.is_superuser:
                    raise PermissionDenied("this route is for superusers only")
                return Resolution(principal, None)
            org_slug = path_params.get("org")
            if org_slug is None:
                if principal.via == "api_key":
                    needed = opt.get("scope")
                    if needed is None:
                        raise PermissionDenied(
                            "API keys cannot be used on this route; sign in as a user"
                        )
                    if principal.scopes is None or KeyScope(needed) not in principal.scopes:
                        raise PermissionDenied(
                            f"this API key lacks the {needed!r} scope needed here"
                        )
                return Resolution(principal, None)
            org = self._org(db, principal, str(org_slug))
            seen["org"] = org
            self._authorize(principal, org, opt)
            return Resolution(principal, org)

    def _principal(self, db: Any, headers: Headers) -> Principal | None:
        # Column queries, not entities: this runs on every request.
        now = utcnow()
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise NotAuthenticated("the Authorization header must be 'Bearer gkw_…'")
            if not apikey_format.well_formed(credential):
                raise NotAuthenticated("the API key is malformed (bad prefix, length or checksum)")
            key = db.execute(_KEY_LOOKUP, {"digest": apikey_format.key_digest(credential)}).first()
            if key is None:
                raise NotAuthenticated("the API key is not valid")
            if key.revoked_at is not None:
                raise NotAuthenticated("the API key has been revoked")
            if key.expires_at is not None and key.expires_at <= now:
                raise NotAuthenticated("the API key has expired")
            if key.last_used_at is None or now - key.last_used_at > TOUCH_INTERVAL:
                self._touch(ApiKey, ApiKey.last_used_at, key.id, now)
            return Principal(
                user_id=key.user_id,
                email=key.email,
                is_superuser=key.is_superuser,
                via="api_key",
                api_key_id=key.id,
                api_key_org_id=key.org_id,
                scopes=effective_scopes(key.scopes),
            )
        token = _cookie(headers, SESSION_COOKIE)
        if not token:
            return None
        sess = db.execute(_SESSION_LOOKUP, {"digest": digest(token)}).first()
        if sess is None or sess.state != "active" or sess.expires_at <= now:
            return None
        if now - sess.last_seen_at > TOUCH_INTERVAL:
            self._touch(UserSession, UserSession.last_seen_at, sess.id, now)
        return Principal(
            user_id=sess.user_id,
            email=sess.email,
            is_superuser=sess.is_superuser,
            via="session",
            session_id=sess.id,
            csrf_token=sess.csrf_token,
        )

    def _touch(self, model: Any, column: Any, row_id: int, now: dt.datetime) -> None:
        """Record last use in its own short write; a busy database only skips it."""
        try:
            with self.kernel.db.transaction() as db:
                db.execute(
                    update(model)
                    .where(model.id == row_id)
                    .where(or_(column.is_(None), column < now - TOUCH_INTERVAL))
                    .values({column.key: now})
                )
        except OperationalError:
            log.warning("could not record last use of %s %s", model.__tablename__, row_id)

    def _org(self, db: Any, principal: Principal, slug: str) -> OrgContext:
        row = db.execute(_ORG_LOOKUP, {"slug": slug, "user_id": principal.user_id}).first()
        not_found = NotFound(f"organization {slug!r} not found")
        if row is None:
            raise not_found
        if principal.via == "api_key" and principal.api_key_org_id != row.id:
            raise not_found
        return OrgContext(id=row.id, slug=row.slug, name=row.name, role=Role(row.role))

    def _authorize(self, principal: Principal, org: OrgContext, opt: dict[str, Any]) -> None:
        name = opt.get("permission")
        catalogue = self.kernel.permissions
        if not name or name not in catalogue:
            raise PermissionDenied(f"route declares no known permission ({name!r})")
        perm = catalogue.get(name)
        if not catalogue.role_allows(org.role, name):
            raise PermissionDenied(
                f"your role {org.role.value!r} does not grant {name!r}; "
                f"it needs {perm.min_role.value!r} or higher"
            )
        if not catalogue.scopes_allow(principal.scopes, name):
            have = ", ".join(sorted(s.value for s in principal.scopes or ()))
            raise PermissionDenied(
                f"this API key's scopes ({have}) do not include {perm.scope.value!r}, "
                f"needed for {name!r}"
            )

    def _audit(
        self, state: dict[str, Any], action: str, status: int, path_params: dict[str, Any]
    ) -> None:
        principal: Principal | None = state.get("principal")
        org: OrgContext | None = state.get("org")
        target = state.get("audit_target")
        if target is None:
            ids = {k: v for k, v in path_params.items() if k != "org"}
            target = (",".join(ids), ",".join(str(v) for v in ids.values())) if ids else ("", "")
        actor = state.get("audit_actor")
        if principal is not None:
            actor_type, actor_id, label = (
                principal.actor_type,
                principal.actor_id,
                principal.label,
            )
        elif actor is not None:
            actor_type, actor_id, label = actor
        else:
            actor_type, actor_id, label = "anonymous", "", ""
        org_id = org.id if org is not None else state.get("audit_org_id")
        self.kernel.audit.record(
            action=action,
            outcome=outcome_of(status),
            status_code=status,
            actor_type=actor_type,
            actor_id=actor_id,
            actor_label=label,
            org_id=org_id,
            target_type=target[0],
            target_id=target[1],
            ip=state.get("client_ip", ""),
            detail=state.get("audit_detail") or {},
        )


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    if status >= 500:
        return "error"
    return "failure"


def _cookie(headers: Headers, name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
