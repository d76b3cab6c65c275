"""Pages, redirects and the headers every dashboard response carries.

Templates are Jinja2 with autoescaping on; they get the data a handler fetched from
the API and decide nothing (no permission check, no business rule). The base
context is the same on every page: who is signed in (``me``), their organizations,
the CSRF token forms must carry, the current organization, contributed navigation
entries, and the one-shot flash message of the previous redirect.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jinja2
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from gakwaya_webui.api import Api, ApiError, state_of

log = logging.getLogger("gakwaya_webui")

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
FLASH_COOKIE = "gakwaya_flash"
CSRF_COOKIE = "gakwaya_csrf"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Extra template folders (plugin-contributed pages), searched after ours.
_extra_dirs: list[Path] = []


def add_template_dir(path: str | Path) -> None:
    """Let ``page()`` find a plugin's templates (searched after the dashboard's own)."""
    folder = Path(path)
    if folder not in _extra_dirs:
        _extra_dirs.append(folder)
        environment.cache_clear()


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([TEMPLATES_DIR, *_extra_dirs]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["bytes"] = _bytes
    return env


def _when(value: Any) -> str:
    """An API timestamp, shortened to minutes (UTC); the full value goes in title=."""
    if not value:
        return ""
    text = str(value).replace("T", " ")
    return text[:16] + " UTC" if len(text) >= 16 else text


def _bytes(value: Any) -> str:
    try:
        n = float(value)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def render_string(template: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(template).render(context)


async def _nav(request: Request[Any, Any, Any], me: Any, orgs: list[Any]) -> list[Any]:
    """Navigation entries contributed by plugins (``gakwaya_webui.contributions``):
    dicts with ``label``, ``href``, ``section`` (``org`` or global) and ``current``."""
    if me is None:
        return []
    try:
        from gakwaya_webui import contributions  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return []
    entries = getattr(contributions, "nav_entries", None)
    if entries is None:
        return []
    try:
        result = entries(request, me=me, orgs=orgs)
        if inspect.isawaitable(result):
            result = await result
    except Exception:  # a plugin's entry must never break every page
        log.exception("contributed navigation entries failed")
        return []
    return list(result or [])


def _flash(request: Request[Any, Any, Any]) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    return unquote(raw)[:500] if raw else None


async def base_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    api = Api.of(request)
    # Both at once: a signed-out visitor gets two 401s, a signed-in one saves a round.
    results: tuple[Any, Any] = await asyncio.gather(
        api.get("/account"), api.get("/orgs", {"limit": 100}), return_exceptions=True
    )
    account, listing = results
    me: Any = None
    orgs: list[Any] = []
    if isinstance(account, BaseException):
        if not isinstance(account, ApiError) or account.status not in (401, 403):
            raise account
    else:
        me = account
        if not isinstance(listing, BaseException):
            orgs = listing["items"]
    org = request.path_params.get("org")
    return {
        "me": me,
        "orgs": orgs,
        "csrf": state_of(request).cookies.get(CSRF_COOKIE, ""),
        "org": org,
        # The caller's role in this organization, to leave out links its role cannot
        # use (the API still decides: a hidden link is a courtesy, not a check).
        "org_role": next((o.get("role") for o in orgs if o.get("slug") == org), None),
        "nav": await _nav(request, me, orgs),
        "flash": _flash(request),
        "path": request.url.path,
    }


async def page(
    request: Request[Any, Any, Any], template: str, *, status: int = 200, **context: Any
) -> Response[str]:
    """Render ``template`` with the base context (overridable by ``context``)."""
    values = await base_context(request)
    values.update(context)
    body = render_string(template, values)
    response: Response[str] = Response(
        body, status_code=status, media_type=MediaType.HTML, headers=dict(SECURITY_HEADERS)
    )
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def fragment(template: str, *, status: int = 200, **context: Any) -> Response[str]:
    """A partial for htmx (no base layout, no API call for the base context)."""
    return Response(
        render_string(template, context),
        status_code=status,
        media_type=MediaType.HTML,
        headers=dict(SECURITY_HEADERS),
    )


def redirect(path: str, *, flash: str | None = None) -> Response[Any]:
    """303 See Other to a path of this site, with a one-shot message for the next page."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        path = "/"
    cookies = []
    if flash:
        cookies.append(
            Cookie(
                key=FLASH_COOKIE,
                value=quote(flash[:500]),
                httponly=True,
                samesite="lax",
                path="/",
                max_age=60,
            )
        )
    return Response(
        None,
        status_code=303,
        headers={"Location": path, **SECURITY_HEADERS},
        cookies=cookies,
    )


def safe_next(value: str | None, default: str = "/") -> str:
    """A ``next=`` target that stays on this site (no scheme, no //host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def _same_site_referer(request: Request[Any, Any, Any]) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc != request.url.netloc:
        return None
    path = parts.path + ("?" + parts.query if parts.query else "")
    return safe_next(path, default="") or None


def error_response(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    """ApiError escaping a handler: 401 → the sign-in page, others → an error page."""
    if exc.status == 401:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        elif request.method != "GET":
            # A form's URL only takes POSTs: come back to the page the form was on.
            target = _same_site_referer(request) or "/"
        return redirect("/login?next=" + quote(target, safe="/"))
    status = exc.status if 400 <= exc.status < 600 else 500
    body = render_string(
        "error.html",
        {
            "me": None,
            "orgs": [],
            "csrf": "",
            "org": request.path_params.get("org"),
            "nav": [],
            "flash": None,
            "path": request.url.path,
            "error": exc,
        },
    )
    return Response(
        body, status_code=status, media_type=MediaType.HTML, headers=dict(SECURITY_HEADERS)
    )


def headers_middleware(app: ASGIApp) -> ASGIApp:
    """Security headers on every dashboard response, and the API's Set-Cookie lines
    (sign-in, sign-out) handed on to the browser."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                state = scope.get("state") or {}
                api_state = state.get("webui_api") if isinstance(state, dict) else None
                if api_state is not None:
                    headers.extend(
                        (b"set-cookie", line.encode("latin-1")) for line in api_state.set_cookie
                    )
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, wrapped)

    return middleware


def form_errors(exc: ApiError, known: Iterable[str]) -> tuple[dict[str, str], str | None]:
    """Split an API error into messages beside the form's fields and a page-level one."""
    names = set(known)
    fields = {k: v for k, v in exc.fields.items() if k in names}
    rest = [v for k, v in exc.fields.items() if k not in names]
    general = None if fields and not rest else exc.detail
    return fields, general
