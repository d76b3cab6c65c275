"""What other plugins add to the dashboard: navigation entries, pages, actions, cards.

They come from the plugins' ``register_nav_entries``, ``register_ui_pages``,
``register_ui_actions`` and ``register_app_cards`` hooks, read through the SDK
(``panel.contributions(kind)``): the dashboard is a plugin too and never asks the
kernel directly. One function per slot of the layout:

- :func:`nav_entries` for the base layout (``render.base_context``);
- :data:`ROUTES`: the pages under ``/p/<plugin>/...``, drawn inside the layout;
- :func:`app_actions`, :func:`org_actions`, :func:`app_cards` for the app and
  organization pages.

Hiding what a role may not use is a courtesy, computed from the role the API reports
and the permission catalogue; the API behind each page checks again. A plugin's
function that raises is contained here: its card, or its page, shows an error naming
the plugin, and the rest of the dashboard works.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import jinja2
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from markupsafe import Markup, escape

from gakwaya_sdk.context import Panel, panel_of
from gakwaya_sdk.permissions import Role
from gakwaya_sdk.ui import (
    AppCard,
    Contribution,
    NavEntry,
    UiAction,
    UiContext,
    UiKind,
    UiPage,
    fill,
)
from gakwaya_webui.api import Api, ApiError
from gakwaya_webui.render import page, redirect
from gakwaya_webui.routing import OPT

log = logging.getLogger("gakwaya_webui")

AnyRequest = Request[Any, Any, Any]
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

_SLUG = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")
_ID = re.compile(r"^[0-9]{1,18}$")


def _items(request: AnyRequest, kind: UiKind) -> Sequence[Contribution]:
    try:
        panel: Panel = panel_of(request)
    except LookupError:
        return []
    return panel.contributions(kind)


def allowed(request: AnyRequest, role: str | None, permission: str | None) -> bool:
    """Whether ``role`` (as the API reports it) holds ``permission`` (``None``: any
    member). An unknown permission is refused: the kernel has already left such an
    item out, this only keeps the rule in one place."""
    if role is None:
        return False
    try:
        rank = Role(role).rank
    except ValueError:
        return False
    if permission is None:
        return True
    entry = panel_of(request).permission(permission)
    return entry is not None and rank >= entry.min_role.rank


#: Where a contributed page under ``{org}`` leaves the organization for the layout.
ORG_STATE_KEY = "webui_org"


def _state(request: AnyRequest) -> dict[str, Any]:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state


def _role_in(orgs: Sequence[Mapping[str, Any]], org: str | None) -> str | None:
    for item in orgs:
        if item.get("slug") == org:
            role = item.get("role")
            return str(role) if role else None
    return None


async def nav_entries(
    request: AnyRequest,
    *,
    me: Mapping[str, Any] | None = None,
    orgs: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The contributed navigation entries this user may see, ready for the layout:
    ``{"label", "href", "section", "plugin", "current"}``, sorted by order then label.

    ``me`` and ``orgs`` are what the layout already fetched (``GET /account`` and
    ``GET /orgs``); without them they are fetched here."""
    contributed = _items(request, "nav")
    if not contributed:
        return []
    api = Api.of(request)
    if me is None:
        try:
            me = await api.get("/account")
        except ApiError:
            return []
    if me is None:
        return []
    org = request.path_params.get("org") or _state(request).get(ORG_STATE_KEY)
    if not isinstance(org, str) or not _SLUG.fullmatch(org):
        org = None
    role: str | None = None
    if org is not None:
        if orgs is None:
            try:
                orgs = (await api.get("/orgs", {"limit": 100}))["items"]
            except ApiError:
                orgs = []
        role = _role_in(orgs or [], org)
    superuser = bool(me.get("is_superuser"))
    out: list[tuple[int, str, dict[str, Any]]] = []
    for contribution in contributed:
        entry = contribution.item
        assert isinstance(entry, NavEntry)
        if entry.section == "org":
            if org is None or role is None or not allowed(request, role, entry.permission):
                continue
            href = fill(entry.href, org=org)
        else:
            if entry.superuser and not superuser:
                continue
            href = entry.href
        out.append(
            (
                entry.order,
                entry.label,
                {
                    "label": entry.label,
                    "href": href,
                    "section": entry.section,
                    "plugin": contribution.plugin,
                    "current": request.url.path == href.split("?", 1)[0],
                },
            )
        )
    return [item for _, _, item in sorted(out, key=lambda t: (t[0], t[1]))]


def _actions(
    request: AnyRequest, target: str, role: str | None, org: str, app_id: int | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for contribution in _items(request, "actions"):
        action = contribution.item
        assert isinstance(action, UiAction)
        if action.target != target or not allowed(request, role, action.permission):
            continue
        out.append(
            {
                "label": action.label,
                "href": fill(action.href, org=org, app_id=app_id),
                "method": action.method,
                "confirm": action.confirm,
                "plugin": contribution.plugin,
            }
        )
    return out


def app_actions(
    request: AnyRequest, *, org: str, app_id: int, role: str | None
) -> list[dict[str, Any]]:
    """Buttons for an app's page: ``{"label", "href", "method", "confirm", "plugin"}``.
    ``role`` is the user's role in ``org`` as the API reports it. A ``POST`` one is a
    form with the CSRF token (``data-confirm`` when ``confirm`` is set)."""
    return _actions(request, "app", role, org, app_id)


def org_actions(request: AnyRequest, *, org: str, role: str | None) -> list[dict[str, Any]]:
    """Buttons for an organization's page (same shape as :func:`app_actions`)."""
    return _actions(request, "org", role, org, None)


# Rendering a plugin's content -----------------------------------------------------------


@cache
def _environment(folder: str) -> jinja2.Environment:
    """One sandbox per template folder: a plugin's fragment sees its own files only,
    never the dashboard's templates (which may change), and is autoescaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _as_html(result: Any, template: str | None, templates: str | Path | None) -> Markup:
    if isinstance(result, Mapping):
        if template is None or templates is None:
            raise TypeError("content returned a mapping but the item names no template")
        env = _environment(str(Path(templates).resolve()))
        return Markup(env.get_template(template).render(dict(result)))  # noqa: S704
    if hasattr(result, "__html__"):
        return Markup(result)  # noqa: S704 (the plugin declared it HTML-safe)
    return escape("" if result is None else str(result))


async def _call(function: Any, ctx: UiContext) -> Any:
    result = function(ctx)
    if inspect.isawaitable(result):
        result = await result
    return result


async def app_cards(
    request: AnyRequest,
    *,
    org: str,
    app_id: int,
    role: str | None,
    me: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Cards for an app's overview: ``{"title", "body", "error", "plugin"}``; ``body``
    is HTML-safe markup, ``error`` a message when the plugin's card failed (its body
    is then empty and the failure is logged with the plugin's name)."""
    cards: list[tuple[int, dict[str, Any]]] = []
    api = Api.of(request)
    for contribution in _items(request, "cards"):
        card = contribution.item
        assert isinstance(card, AppCard)
        if not allowed(request, role, card.permission):
            continue
        ctx = UiContext(request=request, api=api, org=org, app_id=app_id, me=me)
        body, error = Markup(""), None
        try:
            body = _as_html(await _call(card.content, ctx), card.template, card.templates)
        except ApiError as exc:
            if exc.status == 401:
                raise
            error = exc.detail
        except Exception:
            log.exception("plugin %s: card %r failed", contribution.plugin, card.title)
            error = f"this card of plugin {contribution.plugin} failed; see the panel's log"
        cards.append(
            (
                card.order,
                {"title": card.title, "body": body, "error": error, "plugin": contribution.plugin},
            )
        )
    return [c for _, c in sorted(cards, key=lambda t: t[0])]


# Contributed pages ----------------------------------------------------------------------


def _match(pattern: str, path: str) -> dict[str, str] | None:
    want = pattern.split("/")
    got = path.split("/")
    if len(want) != len(got):
        return None
    params: dict[str, str] = {}
    for w, g in zip(want, got, strict=True):
        if w == "{org}":
            if not _SLUG.fullmatch(g):
                return None
            params["org"] = g
        elif w == "{app_id}":
            if not _ID.fullmatch(g):
                return None
            params["app_id"] = g
        elif w != g:
            return None
    return params


def _find(request: AnyRequest, path: str) -> tuple[str, UiPage, dict[str, str]] | None:
    for contribution in _items(request, "pages"):
        item = contribution.item
        assert isinstance(item, UiPage)
        params = _match(item.path, path)
        if params is not None:
            return contribution.plugin, item, params
    return None


class _Denied(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def _context(
    request: AnyRequest,
    plugin: str,
    item: UiPage,
    params: dict[str, str],
    *,
    csrf: str | None = None,
    form: Mapping[str, str] | None = None,
) -> UiContext:
    """The checks every contributed page gets before the plugin's code runs: signed
    in (a 401 sends the browser to /login), a superuser for ``superuser`` pages, a
    member of ``{org}`` (the API's 404 otherwise) holding ``permission``."""
    api = Api.of(request, csrf=csrf)
    me = await api.get("/account")
    if item.superuser and not me.get("is_superuser"):
        raise _Denied(403, "this page is for the installation's administrators")
    org = params.get("org")
    if org is not None:
        shown = await api.get(f"/orgs/{org}")
        _state(request)[ORG_STATE_KEY] = org
        role = shown.get("role")
        if item.permission is not None and not allowed(request, role, item.permission):
            raise _Denied(403, f"your role ({role}) does not hold {item.permission}")
    app_id = int(params["app_id"]) if "app_id" in params else None
    return UiContext(
        request=request,
        api=api,
        params=params,
        org=org,
        app_id=app_id,
        me=me,
        form=dict(form or {}),
    )


async def _draw(
    request: AnyRequest,
    plugin: str,
    item: UiPage,
    ctx: UiContext | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response[str]:
    body = Markup("")
    if ctx is not None and error is None:
        try:
            body = _as_html(await _call(item.content, ctx), item.template, item.templates)
        except ApiError as exc:
            if exc.status == 401:
                raise
            error, status = exc.detail, exc.status
        except Exception:
            log.exception("plugin %s: page %s failed", plugin, item.path)
            error = f"plugin {plugin} failed to draw this page; the panel's log has the details"
            status = 500
    return await page(
        request,
        "plugins/contributed.html",
        status=status,
        title=item.title,
        plugin=plugin,
        body=body,
        error=error,
        **({"org": ctx.org} if ctx is not None and ctx.org else {}),
    )


@get("/p/{rest:path}", include_in_schema=False, opt=dict(OPT), name="webui_contributed")
async def contributed_page(request: AnyRequest, rest: FromPath[str]) -> Response[Any]:
    """Any plugin's page: found by path, checked, drawn in the layout."""
    path = "/p" + rest
    found = _find(request, path)
    if found is None:
        await Api.of(request).get("/account")  # a stranger signs in before seeing a 404
        return await page(
            request,
            "error.html",
            status=404,
            error=ApiError(404, "Not Found", f"no page at {path}"),
        )
    plugin, item, params = found
    try:
        ctx = await _context(request, plugin, item, params)
    except _Denied as exc:
        return await _draw(request, plugin, item, None, error=exc.detail, status=exc.status)
    return await _draw(request, plugin, item, ctx)


@post("/p/{rest:path}", include_in_schema=False, opt=dict(OPT), status_code=303)
async def contributed_submit(request: AnyRequest, rest: FromPath[str], data: Form) -> Response[Any]:
    """A form on a plugin's page: its ``submit`` runs with the API bound to the form's
    CSRF token (the API checks it); a confirmed action asks first without JavaScript."""
    path = "/p" + rest
    found = _find(request, path)
    if found is None or found[1].submit is None:
        await Api.of(request).get("/account")
        return await page(
            request,
            "error.html",
            status=404 if found is None else 405,
            error=ApiError(
                404 if found is None else 405,
                "Not Found" if found is None else "Method Not Allowed",
                f"no form is handled at {path}",
            ),
        )
    plugin, item, params = found
    form = {k: v for k, v in data.items() if k not in ("csrf_token", "confirmed")}
    csrf = data.get("csrf_token", "")
    try:
        ctx = await _context(request, plugin, item, params, csrf=csrf, form=form)
    except _Denied as exc:
        return await _draw(request, plugin, item, None, error=exc.detail, status=exc.status)
    question = _confirmation(request, path, ctx)
    if question is not None and data.get("confirmed") != "yes":
        return await page(
            request,
            "confirm.html",
            message=question[1],
            label=question[0],
            action=path,
            back=question[2],
            hidden=form,
        )
    assert item.submit is not None
    try:
        target = await _call(item.submit, ctx)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await _draw(request, plugin, item, ctx, error=exc.detail, status=exc.status)
    except Exception:
        log.exception("plugin %s: form of page %s failed", plugin, item.path)
        return await _draw(
            request,
            plugin,
            item,
            ctx,
            error=f"plugin {plugin} failed to handle this form; the panel's log has the details",
            status=500,
        )
    return redirect(target if isinstance(target, str) else path)


def _confirmation(request: AnyRequest, path: str, ctx: UiContext) -> tuple[str, str, str] | None:
    """(label, question, page to go back to) of a contributed POST action leading
    here with ``confirm``."""
    for contribution in _items(request, "actions"):
        action = contribution.item
        assert isinstance(action, UiAction)
        if action.method != "POST" or action.confirm is None or ctx.org is None:
            continue
        if fill(action.href, org=ctx.org, app_id=ctx.app_id) == path:
            back = f"/orgs/{ctx.org}"
            if action.target == "app" and ctx.app_id is not None:
                back += f"/apps/{ctx.app_id}"
            return action.label, action.confirm, back
    return None


ROUTES: list[Any] = [contributed_page, contributed_submit]
