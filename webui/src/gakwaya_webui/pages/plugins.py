"""Plugins: the installed ones with their status, the marketplace, and every plugin's
settings form, generated from its settings schema (the manifest's ``settings``).

Installation-wide pages call superuser-only API routes (``plugins_*``,
``marketplace_*``, ``plugin_settings_*``): the API answers 403 to anyone else and the
page shows it. Organization admins configure their organization's values of
``organization``-scoped settings at ``/orgs/{org}/plugins``. A secret is never shown
back, only whether it is set; an empty secret field keeps the stored value.

Plugins' own pages (``/p/...``) are mounted from here too (:mod:`..contributions`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.params import FromPath, FromQuery

from gakwaya_webui import contributions
from gakwaya_webui.api import Api, ApiError
from gakwaya_webui.forms import Form, ask_confirmation, confirmed, text
from gakwaya_webui.pages._common import seg
from gakwaya_webui.render import page, redirect
from gakwaya_webui.routing import page_get, page_post

AnyRequest = Request[Any, Any, Any]
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

#: How each setting type is entered in a form.
WIDGETS = {
    "str": "text",
    "int": "number",
    "float": "number",
    "bool": "select",
    "list[str]": "textarea",
}


def _seg(name: str) -> str:
    return seg(name)


# Installed plugins and the marketplace -------------------------------------------------


@page_get("/plugins")
async def plugins_index(request: AnyRequest, q: FromQuery[str] = "") -> Response[Any]:
    """Installed plugins (status and reason) and the marketplace's search."""
    api = Api.of(request)
    me = await api.get("/account")
    if not me.get("is_superuser"):
        raise ApiError(403, "Forbidden", "plugins are managed by the installation's administrators")
    installed = (await api.get("/plugins"))["items"]
    market: list[dict[str, Any]] = []
    market_error: str | None = None
    index = ""
    try:
        found = await api.get("/marketplace/plugins", {"q": q[:200]})
        market, index = found["items"], found.get("index", "")
    except ApiError as exc:
        if exc.status == 401:
            raise
        market_error = exc.detail
    return await page(
        request,
        "plugins/index.html",
        installed=installed,
        market=market,
        market_error=market_error,
        index=index,
        q=q,
    )


async def _outcome(
    request: AnyRequest, api: Api, method: str, path: str, back: str
) -> Response[Any]:
    try:
        result = await api.call(method, path, json={} if method == "POST" else None)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return redirect(back, flash=f"Error: {exc.detail}")
    detail = result.get("detail", "") if isinstance(result, dict) else ""
    return redirect(back, flash=detail or "Done.")


@page_post("/plugins/{name:str}/enable")
async def plugin_enable(request: AnyRequest, name: FromPath[str], data: Form) -> Response[Any]:
    api = Api.of(request, csrf=text(data, "csrf_token"))
    return await _outcome(request, api, "POST", f"/plugins/{_seg(name)}/enable", "/plugins")


@page_post("/plugins/{name:str}/disable")
async def plugin_disable(request: AnyRequest, name: FromPath[str], data: Form) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Disable the plugin {name}? What it adds stops at the next restart.",
            label="Disable",
            back="/plugins",
        )
    api = Api.of(request, csrf=text(data, "csrf_token"))
    return await _outcome(request, api, "POST", f"/plugins/{_seg(name)}/disable", "/plugins")


@page_get("/marketplace/{name:str}")
async def market_show(request: AnyRequest, name: FromPath[str]) -> Response[Any]:
    """One plugin of the index: its versions, and why a version cannot be installed."""
    api = Api.of(request)
    info = await api.get(f"/marketplace/plugins/{_seg(name)}")
    return await page(request, "plugins/market_show.html", info=info)


@page_post("/plugins/install")
async def plugin_install(request: AnyRequest, data: Form) -> Response[Any]:
    name = text(data, "name")
    version = text(data, "version")
    # Back to the plugin's page when the name is one (else its page would be a 404
    # and the API's message, naming the field, would not be seen).
    back = f"/marketplace/{quote(name, safe='')}" if _PLAIN.fullmatch(name) else "/plugins"
    if not confirmed(data):
        what = f"{name} {version}".strip()
        return await ask_confirmation(
            request,
            data,
            message=(
                f"Install {what} from the signed index? Its code runs in every process of "
                "the panel after the next restart."
            ),
            label="Install",
            back=back,
            keep=("name", "version"),
        )
    api = Api.of(request, csrf=text(data, "csrf_token"))
    try:
        result = await api.post("/plugins/install", {"name": name, "version": version or None})
    except ApiError as exc:
        if exc.status == 401:
            raise
        return redirect(back, flash=f"Error: {exc.detail}")
    return redirect("/plugins", flash=result.get("detail") or "Installed.")


@page_post("/plugins/{name:str}/upgrade")
async def plugin_upgrade(request: AnyRequest, name: FromPath[str], data: Form) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Upgrade {name} to the newest release this panel can load?",
            label="Upgrade",
            back="/plugins",
        )
    api = Api.of(request, csrf=text(data, "csrf_token"))
    return await _outcome(request, api, "POST", f"/plugins/{_seg(name)}/upgrade", "/plugins")


@page_post("/plugins/{name:str}/remove")
async def plugin_remove(request: AnyRequest, name: FromPath[str], data: Form) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=(
                f"Remove the plugin {name}? It is uninstalled and dropped from plugins.lock; "
                "its tables and settings are kept."
            ),
            label="Remove",
            back="/plugins",
        )
    api = Api.of(request, csrf=text(data, "csrf_token"))
    return await _outcome(request, api, "DELETE", f"/plugins/{_seg(name)}", "/plugins")


# Settings forms ---------------------------------------------------------------------------


def _shown(setting: Mapping[str, Any]) -> str:
    """A setting's value as its form field holds it."""
    if setting.get("secret"):
        return ""
    value = setting.get("value")
    if value is None:
        return ""
    if setting.get("type") == "list[str]" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if setting.get("type") == "bool":
        return "true" if value else "false"
    return str(value)


def _converted(kind: str, raw: str) -> Any:
    """The form's text as the setting's JSON type; text that does not convert is sent
    as is, so the API refuses it with its message naming the setting."""
    if kind == "int":
        try:
            return int(raw.strip())
        except ValueError:
            return raw
    if kind == "float":
        try:
            return float(raw.strip())
        except ValueError:
            return raw
    if kind == "bool":
        return {"true": True, "false": False}.get(raw, raw)
    if kind == "list[str]":
        return [line.strip() for line in raw.replace("\r\n", "\n").split("\n") if line.strip()]
    return raw


def changed_values(settings: list[Mapping[str, Any]], data: Mapping[str, Any]) -> dict[str, Any]:
    """What the form changes: ``None`` (back to the default or the installation's
    value) for a ticked "reset", a new value for a field that differs from what the
    form showed; an empty secret field is left alone."""
    values: dict[str, Any] = {}
    for setting in settings:
        name = str(setting["name"])
        if data.get(f"unset.{name}") == "yes":
            if setting.get("is_set"):
                values[name] = None
            continue
        raw = data.get(f"s.{name}")
        if not isinstance(raw, str):
            continue
        if setting.get("secret"):
            if raw:
                values[name] = raw
            continue
        if raw.replace("\r\n", "\n") == _shown(setting):
            continue
        values[name] = _converted(str(setting.get("type", "str")), raw)
    return values


def _field_errors(exc: ApiError) -> tuple[dict[str, str], str | None]:
    """The API names ``values.<setting>``; the form's fields are the settings."""
    fields = {k.removeprefix("values."): v for k, v in exc.fields.items()}
    return fields, (None if fields else exc.detail)


async def _settings_page(
    request: AnyRequest,
    view: Mapping[str, Any],
    *,
    action: str,
    back: str,
    org: str | None = None,
    typed: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response[Any]:
    fields = []
    for setting in view["settings"]:
        name = setting["name"]
        shown = _shown(setting)
        if typed is not None and not setting.get("secret"):
            value = typed.get(f"s.{name}")
            shown = value if isinstance(value, str) else shown
        fields.append(
            {**setting, "shown": shown, "widget": WIDGETS.get(setting.get("type"), "text")}
        )
    context: dict[str, Any] = {
        "view": view,
        "fields": fields,
        "action": action,
        "back": back,
        "errors": dict(errors or {}),
        "error": error,
    }
    if org is not None:
        context["org"] = org
    return await page(request, "plugins/settings.html", status=status, **context)


@page_get("/plugins/{name:str}/settings")
async def plugin_settings(request: AnyRequest, name: FromPath[str]) -> Response[Any]:
    view = await Api.of(request).get(f"/plugins/{_seg(name)}/settings")
    return await _settings_page(
        request, view, action=f"/plugins/{quote(name, safe='')}/settings", back="/plugins"
    )


async def _save(
    request: AnyRequest,
    data: Mapping[str, Any],
    api_path: str,
    *,
    action: str,
    back: str,
    org: str | None = None,
) -> Response[Any]:
    api = Api.of(request, csrf=text(data, "csrf_token"))
    view = await api.get(api_path)
    values = changed_values(view["settings"], data)
    if not values:
        return redirect(action, flash="Nothing changed.")
    try:
        await api.put(api_path, {"values": values})
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = _field_errors(exc)
        return await _settings_page(
            request,
            view,
            action=action,
            back=back,
            org=org,
            typed=data,
            errors=fields,
            error=general,
            status=exc.status,
        )
    names = ", ".join(sorted(values))
    return redirect(action, flash=f"Saved: {names}.")


@page_post("/plugins/{name:str}/settings")
async def plugin_settings_save(
    request: AnyRequest, name: FromPath[str], data: Form
) -> Response[Any]:
    action = f"/plugins/{quote(name, safe='')}/settings"
    return await _save(
        request, data, f"/plugins/{_seg(name)}/settings", action=action, back="/plugins"
    )


@page_get("/orgs/{org:str}/plugins")
async def org_plugin_settings(request: AnyRequest, org: FromPath[str]) -> Response[Any]:
    """The organization's values of every plugin's organization-scoped settings."""
    views = (await Api.of(request).get(f"/orgs/{seg(org)}/plugin-settings"))["items"]
    return await page(request, "plugins/org_settings.html", views=views)


@page_get("/orgs/{org:str}/plugins/{name:str}/settings")
async def org_plugin_settings_form(
    request: AnyRequest, org: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    view = await Api.of(request).get(f"/orgs/{seg(org)}/plugins/{_seg(name)}/settings")
    return await _settings_page(
        request,
        view,
        action=f"/orgs/{quote(org, safe='')}/plugins/{quote(name, safe='')}/settings",
        back=f"/orgs/{quote(org, safe='')}/plugins",
    )


@page_post("/orgs/{org:str}/plugins/{name:str}/settings")
async def org_plugin_settings_save(
    request: AnyRequest, org: FromPath[str], name: FromPath[str], data: Form
) -> Response[Any]:
    return await _save(
        request,
        data,
        f"/orgs/{seg(org)}/plugins/{_seg(name)}/settings",
        action=f"/orgs/{quote(org, safe='')}/plugins/{quote(name, safe='')}/settings",
        back=f"/orgs/{quote(org, safe='')}/plugins",
    )


ROUTES: list[Any] = [
    plugins_index,
    plugin_enable,
    plugin_disable,
    market_show,
    plugin_install,
    plugin_upgrade,
    plugin_remove,
    plugin_settings,
    plugin_settings_save,
    org_plugin_settings,
    org_plugin_settings_form,
    org_plugin_settings_save,
    *contributions.ROUTES,
]
