"""An app and everything about it: overview and lifecycle, deploys with their live
log, the queue, releases and rollback, variables, domains, container logs and stats.

Each page is one or a few API calls; each form one API call whose error is shown
beside its field. Live views (a deployment's log, the container output) read the
API's Server-Sent Events straight from the browser (``webui.js``, ``data-sse``);
the page itself renders what is stored, so it is useful without JavaScript.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Response
from litestar.params import FromPath, FromQuery, QueryParameter

from gakwaya_webui.api import Api, ApiError
from gakwaya_webui.forms import Form, ask_confirmation, confirmed, text
from gakwaya_webui.pages._common import (
    PAGE_SIZE,
    AnyRequest,
    all_items,
    app_of,
    can,
    float_or_none,
    int_or_none,
    org_of,
    seg,
)
from gakwaya_webui.render import form_errors, fragment, page, redirect
from gakwaya_webui.routing import page_get, page_post

APP = "/orgs/{org:str}/apps/{app_id:int}"
APP_FIELDS = (
    "project",
    "environment",
    "name",
    "source_type",
    "git_url",
    "git_ref",
    "subdirectory",
    "dockerfile",
    "image",
    "port",
    "replicas",
    "cpu",
    "memory_mb",
)
#: Deployment states after which nothing changes any more.
FINISHED = ("succeeded", "failed", "cancelled", "superseded")
#: Events after which the app's status card is worth fetching again.
STATUS_EVENTS = (
    "app.state_changed",
    "app.crashed",
    "app.updated",
    "deployment.queued",
    "deployment.started",
    "deployment.succeeded",
    "deployment.failed",
    "deployment.cancelled",
)


def _base(org: str, app_id: int) -> str:
    return f"/orgs/{seg(org)}/apps/{int(app_id)}"


async def _optional(coro: Any) -> tuple[Any, str | None]:
    """A call whose failure should not sink the whole page (the engine is down, say):
    its value, or None and the API's message."""
    try:
        return await coro, None
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return None, exc.detail


async def _app_page(
    request: AnyRequest,
    org: str,
    app_id: int,
    template: str,
    tab: str,
    *,
    status: int = 200,
    info: dict[str, Any] | None = None,
    **context: Any,
) -> Response[Any]:
    """Render one tab of an app with what every tab shows: the app, the org, the role
    (``info``, the organization, when the caller already has it)."""
    api = Api.of(request)
    if info is None:
        org_info, app = await asyncio.gather(org_of(api, org), app_of(api, org, app_id))
    else:
        org_info, app = info, await app_of(api, org, app_id)
    info = org_info
    role = info.get("role")
    values: dict[str, Any] = {
        "info": info,
        "app": app,
        "role": role,
        "tab": tab,
        "base": _base(org, app_id),
        "error": None,
        "field_errors": {},
        "values": {},
        "can": {
            perm: can(request, role, perm)
            for perm in (
                "apps.write",
                "apps.delete",
                "apps.lifecycle",
                "deployments.create",
                "deployments.cancel",
                "env.write",
                "domains.write",
                "domains.delete",
            )
        },
    }
    values.update(context)
    return await page(request, template, status=status, **values)


# Creating an app ---------------------------------------------------------------------


async def _new_form(
    request: AnyRequest, org: str, values: dict[str, Any], *, status: int = 200, **extra: Any
) -> Response[Any]:
    api = Api.of(request)
    info = await org_of(api, org)
    projects = await all_items(api, f"/orgs/{seg(org)}/projects")
    choices = [
        (f"{p['name']}/{env}", f"{p['name']} / {env}")
        for p in sorted(projects, key=lambda p: p["name"])
        for env in p["environments"]
    ]
    context: dict[str, Any] = {
        "info": info,
        "choices": choices,
        "values": values,
        "field_errors": {},
        "error": None,
    }
    context.update(extra)
    return await page(request, "apps/new.html", status=status, **context)


@page_get("/orgs/{org:str}/apps/new")
async def app_new(
    request: AnyRequest,
    org: FromPath[str],
    project: FromQuery[str | None] = None,
    environment: FromQuery[str | None] = None,
) -> Response[Any]:
    values = {
        "target": f"{project}/{environment}" if project and environment else "",
        "source_type": "git",
        "git_ref": "main",
        "dockerfile": "Dockerfile",
        "port": "8000",
        "replicas": "1",
    }
    return await _new_form(request, org, values)


@page_post("/orgs/{org:str}/apps/new")
async def app_create(request: AnyRequest, org: FromPath[str], data: Form) -> Response[Any]:
    values = {name: text(data, name) for name in (*APP_FIELDS, "target")}
    project, _, environment = values["target"].partition("/")
    body: dict[str, Any] = {
        "project": project,
        "environment": environment,
        "name": values["name"],
        "source_type": values["source_type"] or "git",
    }
    if body["source_type"] == "image":
        body["image"] = values["image"]
    else:
        body.update(
            git_url=values["git_url"],
            git_ref=values["git_ref"] or "main",
            subdirectory=values["subdirectory"],
            dockerfile=values["dockerfile"] or "Dockerfile",
        )
    for name, convert in (
        ("port", int_or_none),
        ("replicas", int_or_none),
        ("cpu", float_or_none),
        ("memory_mb", int_or_none),
    ):
        number = convert(values[name])
        if number is not None:
            body[name] = number
    try:
        created = await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"/orgs/{seg(org)}/apps", body
        )
    except ApiError as exc:
        if exc.status in (401, 404) and not exc.fields:
            raise
        fields, general = form_errors(exc, APP_FIELDS)
        for name in ("project", "environment"):
            if name in fields:
                fields.setdefault("target", fields.pop(name))
        if fields and general is None and exc.fields.keys() - set(APP_FIELDS):
            general = exc.detail
        return await _new_form(
            request, org, values, status=exc.status, field_errors=fields, error=general
        )
    return redirect(
        f"{_base(org, created['id'])}/deploy",
        flash=f"App {created['name']} created. Deploy it to get it running.",
    )


# Overview and lifecycle -----------------------------------------------------------------


async def _status_context(api: Api, org: str, app_id: int) -> dict[str, Any]:
    base = f"/orgs/{seg(org)}/apps/{int(app_id)}"
    status, status_error = await _optional(api.get(f"{base}/status"))
    # Not "status": page() takes that name for the HTTP status code.
    return {"app_status": status, "status_error": status_error}


@page_get(APP)
async def app_overview(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    api = Api.of(request)
    base = f"/orgs/{seg(org)}/apps/{int(app_id)}"
    info = await org_of(api, org)
    role = info.get("role")
    (state, releases, deployments, domains) = await asyncio.gather(
        _status_context(api, org, app_id),
        _optional(api.get(f"{base}/releases", {"limit": 1})),
        _optional(api.get(f"{base}/deployments", {"limit": 5})),
        _optional(api.get(f"{base}/domains", {"limit": PAGE_SIZE})),
    )
    current = None
    if releases[0]:
        current = next((r for r in releases[0]["items"] if r.get("current")), None)
    cards, actions = await _contributed(request, org, app_id, role)
    return await _app_page(
        request,
        org,
        app_id,
        "apps/overview.html",
        "overview",
        info=info,
        current_release=current,
        deployments=(deployments[0] or {}).get("items", []),
        domains=(domains[0] or {}).get("items", []),
        cards=cards,
        app_actions=actions,
        sse_events=" ".join(STATUS_EVENTS),
        **state,
    )


async def _contributed(
    request: AnyRequest, org: str, app_id: int, role: str | None
) -> tuple[list[Any], list[Any]]:
    try:
        from gakwaya_webui.contributions import app_actions, app_cards
    except ImportError:  # pragma: no cover
        return [], []
    cards = await app_cards(request, org=org, app_id=app_id, role=role)
    return cards, app_actions(request, org=org, app_id=app_id, role=role)


@page_get(f"{APP}/status")
async def app_status_fragment(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    """The status card alone, for htmx to swap in when an event says it changed."""
    api = Api.of(request)
    app = await app_of(api, org, app_id)
    context = await _status_context(api, org, app_id)
    return fragment("apps/_status.html", app=app, **context)


async def _lifecycle(
    request: AnyRequest, org: str, app_id: int, data: dict[str, str], action: str, done: str
) -> Response[Any]:
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).post(f"{_base(org, app_id)}/{action}")
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return await _app_page(
            request,
            org,
            app_id,
            "apps/action_failed.html",
            "overview",
            status=exc.status,
            error=exc.detail,
        )
    return redirect(_base(org, app_id), flash=done)


@page_post(f"{APP}/start")
async def app_start(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    return await _lifecycle(request, org, app_id, data, "start", "Starting the app.")


@page_post(f"{APP}/stop")
async def app_stop(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message="Stop the app? It stops serving until you start it again.",
            label="Stop app",
            back=_base(org, app_id),
        )
    return await _lifecycle(request, org, app_id, data, "stop", "The app is stopping.")


@page_post(f"{APP}/restart")
async def app_restart(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message="Restart every instance of the app?",
            label="Restart app",
            back=_base(org, app_id),
        )
    return await _lifecycle(request, org, app_id, data, "restart", "The app is restarting.")


@page_post(f"{APP}/scale")
async def app_scale(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    replicas = int_or_none(text(data, "replicas"))
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"{_base(org, app_id)}/scale", {"replicas": replicas}
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("replicas",))
        return await _app_page(
            request,
            org,
            app_id,
            "apps/action_failed.html",
            "overview",
            status=exc.status,
            error=general or fields.get("replicas"),
        )
    return redirect(_base(org, app_id), flash=f"Scaling to {replicas} instance(s).")


@page_post(f"{APP}/delete")
async def app_delete(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        app = await app_of(Api.of(request), org, app_id)
        return await ask_confirmation(
            request,
            data,
            message=(
                f"Delete the app {app['name']} with its variables, releases, deployments "
                "and domains? Its containers are stopped and removed. This cannot be undone."
            ),
            label="Delete app",
            back=_base(org, app_id),
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).delete(_base(org, app_id))
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return await _app_page(
            request,
            org,
            app_id,
            "apps/action_failed.html",
            "overview",
            status=exc.status,
            error=exc.detail,
        )
    return redirect(f"/orgs/{seg(org)}", flash="App deleted.")


# Settings ---------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "git_url",
    "git_ref",
    "subdirectory",
    "dockerfile",
    "image",
    "port",
    "cpu",
    "memory_mb",
    "health.kind",
    "health.path",
    "restart_policy",
)


@page_get(f"{APP}/settings")
async def settings_page(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    return await _app_page(request, org, app_id, "apps/settings.html", "settings")


@page_post(f"{APP}/settings")
async def settings_submit(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    values = {name: text(data, name) for name in SETTINGS_FIELDS}
    app = await app_of(Api.of(request), org, app_id)
    body: dict[str, Any] = {
        "port": int_or_none(values["port"]),
        # Empty: no limit (null), as the API takes it.
        "cpu": float_or_none(values["cpu"]),
        "memory_mb": int_or_none(values["memory_mb"]),
        "health": {"kind": values["health.kind"], "path": values["health.path"] or "/"},
        "restart_policy": values["restart_policy"],
    }
    if app["source_type"] == "image":
        body["image"] = values["image"]
    else:
        body.update(
            git_url=values["git_url"],
            git_ref=values["git_ref"],
            subdirectory=values["subdirectory"],
            dockerfile=values["dockerfile"],
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).patch(_base(org, app_id), body)
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, SETTINGS_FIELDS)
        return await _app_page(
            request,
            org,
            app_id,
            "apps/settings.html",
            "settings",
            status=exc.status,
            values=values,
            field_errors=fields,
            error=general,
        )
    return redirect(
        f"{_base(org, app_id)}/settings",
        flash="Settings saved. They apply from the next deployment.",
    )


# Deploying --------------------------------------------------------------------------------


@page_get(f"{APP}/deploy")
async def deploy_page(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    api = Api.of(request)
    active = await api.get(f"{_base(org, app_id)}/deployments", {"limit": 20})
    running = [d for d in active["items"] if d["state"] not in FINISHED]
    return await _app_page(request, org, app_id, "apps/deploy.html", "deploy", active=running)


@page_post(f"{APP}/deploy")
async def deploy_submit(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    ref = text(data, "ref")
    body = {"ref": ref} if ref else {}
    try:
        created = await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"{_base(org, app_id)}/deployments", body
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("ref",))
        return await _app_page(
            request,
            org,
            app_id,
            "apps/deploy.html",
            "deploy",
            status=exc.status,
            active=[],
            values={"ref": ref},
            field_errors=fields,
            error=general,
        )
    return redirect(
        f"{_base(org, app_id)}/deployments/{created['id']}",
        flash=f"Deployment #{created['number']} queued.",
    )


@page_get(f"{APP}/deployments")
async def deployments_page(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[Any]:
    listing = await Api.of(request).get(
        f"{_base(org, app_id)}/deployments", {"limit": 50, "state": state_filter, "cursor": cursor}
    )
    return await _app_page(
        request,
        org,
        app_id,
        "apps/deployments.html",
        "deployments",
        deployments=listing["items"],
        next_cursor=listing.get("next_cursor"),
        state=state_filter or "",
        finished=FINISHED,
    )


@page_get(f"{APP}/deployments/{{deployment_id:int}}")
async def deployment_page(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], deployment_id: FromPath[int]
) -> Response[Any]:
    deployment = await Api.of(request).get(f"/orgs/{seg(org)}/deployments/{int(deployment_id)}")
    if deployment["app_id"] != app_id:
        raise ApiError(404, "Not found", f"deployment {deployment_id} not found")
    return await _app_page(
        request,
        org,
        app_id,
        "apps/deployment.html",
        "deployments",
        deployment=deployment,
        live=deployment["state"] not in FINISHED,
        stream=f"/api/v1/orgs/{seg(org)}/deployments/{int(deployment_id)}/logs",
    )


@page_post(f"{APP}/deployments/{{deployment_id:int}}/cancel")
async def deployment_cancel(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    deployment_id: FromPath[int],
    data: Form,
) -> Response[Any]:
    back = f"{_base(org, app_id)}/deployments/{int(deployment_id)}"
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Cancel deployment {deployment_id}? The current release keeps serving.",
            label="Cancel deployment",
            back=back,
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"/orgs/{seg(org)}/deployments/{int(deployment_id)}/cancel"
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return redirect(back, flash=f"Not cancelled: {exc.detail}")
    return redirect(back, flash="Deployment cancelled.")


# Releases ----------------------------------------------------------------------------------


@page_get(f"{APP}/releases")
async def releases_page(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    cursor: FromQuery[str | None] = None,
) -> Response[Any]:
    listing = await Api.of(request).get(
        f"{_base(org, app_id)}/releases", {"limit": 50, "cursor": cursor}
    )
    return await _app_page(
        request,
        org,
        app_id,
        "apps/releases.html",
        "releases",
        releases=listing["items"],
        next_cursor=listing.get("next_cursor"),
    )


@page_post(f"{APP}/releases/{{release_id:int}}/rollback")
async def release_rollback(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    release_id: FromPath[int],
    data: Form,
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=(
                f"Roll back to release {release_id}? It is deployed again with its image, "
                "configuration and variables, without a rebuild."
            ),
            label="Roll back",
            back=f"{_base(org, app_id)}/releases",
        )
    try:
        created = await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"/orgs/{seg(org)}/releases/{int(release_id)}/rollback"
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return redirect(f"{_base(org, app_id)}/releases", flash=f"Not rolled back: {exc.detail}")
    return redirect(
        f"{_base(org, app_id)}/deployments/{created['id']}",
        flash=f"Rollback queued as deployment #{created['number']}.",
    )


# Environment variables -----------------------------------------------------------------------


async def _env_page(
    request: AnyRequest, org: str, app_id: int, *, status: int = 200, **extra: Any
) -> Response[Any]:
    listing = await Api.of(request).get(f"{_base(org, app_id)}/env")
    return await _app_page(
        request,
        org,
        app_id,
        "apps/env.html",
        "env",
        status=status,
        variables=listing["items"],
        **extra,
    )


@page_get(f"{APP}/env")
async def env_page(request: AnyRequest, org: FromPath[str], app_id: FromPath[int]) -> Response[Any]:
    return await _env_page(request, org, app_id)


@page_post(f"{APP}/env")
async def env_set(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    key = text(data, "key")
    value = data.get("value", "")
    secret = data.get("secret") == "on"
    redeploy = data.get("redeploy") == "on"
    try:
        result = await Api.of(request, csrf=text(data, "csrf_token")).patch(
            f"{_base(org, app_id)}/env",
            {"vars": {key: {"value": value, "secret": secret}}, "redeploy": redeploy},
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields: dict[str, str] = {}
        for name, message in exc.fields.items():
            if not name.startswith("vars"):
                continue
            # Key and value errors are both named vars.<KEY>; the rule tells them apart.
            fields["key" if "variable name" in message or name == "vars" else "value"] = message
        # A secret value is never sent back to the browser, even one that was refused.
        return await _env_page(
            request,
            org,
            app_id,
            status=exc.status,
            values={"key": key, "value": "" if secret else value, "secret": secret},
            field_errors=fields,
            error=None if fields else exc.detail,
        )
    flash = f"{key} saved."
    if result and result.get("deployment_id"):
        flash += f" Redeploying (deployment {result['deployment_id']})."
    return redirect(f"{_base(org, app_id)}/env", flash=flash)


@page_post(f"{APP}/env/{{key:str}}/delete")
async def env_unset(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], key: FromPath[str], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Remove the variable {key}? The app keeps it until its next deployment.",
            label="Remove variable",
            back=f"{_base(org, app_id)}/env",
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).delete(
            f"{_base(org, app_id)}/env/{seg(key)}"
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await _env_page(request, org, app_id, status=exc.status, error=exc.detail)
    return redirect(f"{_base(org, app_id)}/env", flash=f"{key} removed.")


# Domains ---------------------------------------------------------------------------------------


#: What a domain's options form changes (domains_update; the name never changes).
DOMAIN_OPTIONS = ("https_redirect", "redirect", "max_body_mb", "timeout_seconds")


async def _domains_page(
    request: AnyRequest, org: str, app_id: int, *, status: int = 200, **extra: Any
) -> Response[Any]:
    listing = await Api.of(request).get(f"{_base(org, app_id)}/domains", {"limit": PAGE_SIZE})
    # The options form of one domain: what was typed and the API's messages, shown in
    # that domain's form only (the "add a domain" form has fields of the same names).
    context: dict[str, Any] = {"edit_id": None, "edit_values": {}, "edit_errors": {}}
    context.update(extra)
    return await _app_page(
        request,
        org,
        app_id,
        "apps/domains.html",
        "domains",
        status=status,
        domains=listing["items"],
        **context,
    )


@page_get(f"{APP}/domains")
async def domains_page(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    return await _domains_page(request, org, app_id)


@page_post(f"{APP}/domains")
async def domain_add(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int], data: Form
) -> Response[Any]:
    values = {
        "name": text(data, "name"),
        "redirect": text(data, "redirect") or "none",
        "https_redirect": data.get("https_redirect") == "on",
    }
    try:
        created = await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"{_base(org, app_id)}/domains", values
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("name", "redirect"))
        return await _domains_page(
            request,
            org,
            app_id,
            status=exc.status,
            values=values,
            field_errors=fields,
            error=general,
        )
    return redirect(
        f"{_base(org, app_id)}/domains#domain-{created['id']}",
        flash=f"{created['display_name']} added: create the DNS records below.",
    )


@page_post(f"{APP}/domains/{{domain_id:int}}/verify")
async def domain_verify(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    domain_id: FromPath[int],
    data: Form,
) -> Response[Any]:
    back = f"{_base(org, app_id)}/domains#domain-{int(domain_id)}"
    try:
        result = await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"/orgs/{seg(org)}/domains/{int(domain_id)}/verify"
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return redirect(back, flash=f"Not verified: {exc.detail}")
    verification = result.get("verification") or {}
    if verification.get("verified_at"):
        return redirect(back, flash=f"{result['display_name']} is verified.")
    reason = verification.get("error") or "the TXT record was not found yet"
    return redirect(back, flash=f"Not verified yet: {reason}")


async def _domain_of_app(api: Api, org: str, app_id: int, domain_id: int) -> dict[str, Any]:
    """The domain, when it is one of this app's (the API scopes it to the organization
    only): another app's domain under this app's URL is not found."""
    cursor: str | None = None
    while True:
        listing = await api.get(
            f"{_base(org, app_id)}/domains", {"limit": PAGE_SIZE, "cursor": cursor}
        )
        for item in listing["items"]:
            if item["id"] == domain_id:
                return dict(item)
        cursor = listing.get("next_cursor")
        if not cursor:
            raise ApiError(404, "Not found", f"domain {domain_id} not found")


@page_post(f"{APP}/domains/{{domain_id:int}}/settings")
async def domain_update(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    domain_id: FromPath[int],
    data: Form,
) -> Response[Any]:
    values: dict[str, Any] = {
        "https_redirect": data.get("https_redirect") == "on",
        "redirect": text(data, "redirect"),
        "max_body_mb": text(data, "max_body_mb"),
        "timeout_seconds": text(data, "timeout_seconds"),
    }
    body: dict[str, Any] = {
        "https_redirect": values["https_redirect"],
        # Empty: no limit, the proxy's default timeout (null, as the API takes it).
        "max_body_mb": int_or_none(values["max_body_mb"]),
        "timeout_seconds": float_or_none(values["timeout_seconds"]),
    }
    if values["redirect"]:  # a default domain's form offers no redirect
        body["redirect"] = values["redirect"]
    api = Api.of(request, csrf=text(data, "csrf_token"))
    try:
        await _domain_of_app(api, org, app_id, domain_id)
        result = await api.patch(f"/orgs/{seg(org)}/domains/{int(domain_id)}", body)
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, DOMAIN_OPTIONS)
        return await _domains_page(
            request,
            org,
            app_id,
            status=exc.status,
            edit_id=int(domain_id),
            edit_values=values,
            edit_errors=fields,
            error=general,
        )
    flash = f"Options of {result['display_name']} saved."
    if result.get("routes_error"):
        flash += f" The proxy was not updated yet ({result['routes_error']}): it is retried."
    return redirect(f"{_base(org, app_id)}/domains#domain-{int(domain_id)}", flash=flash)


@page_post(f"{APP}/domains/{{domain_id:int}}/delete")
async def domain_delete(
    request: AnyRequest,
    org: FromPath[str],
    app_id: FromPath[int],
    domain_id: FromPath[int],
    data: Form,
) -> Response[Any]:
    back = f"{_base(org, app_id)}/domains"
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message="Remove this domain? The proxy stops serving it at once.",
            label="Remove domain",
            back=back,
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).delete(
            f"/orgs/{seg(org)}/domains/{int(domain_id)}"
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return await _domains_page(request, org, app_id, status=exc.status, error=exc.detail)
    return redirect(back, flash="Domain removed.")


# Container logs and stats -------------------------------------------------------------------------


@page_get(f"{APP}/logs")
async def logs_page(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    lines, logs_error = await _optional(
        Api.of(request).get(f"{_base(org, app_id)}/logs", {"tail": 200})
    )
    return await _app_page(
        request,
        org,
        app_id,
        "apps/logs.html",
        "logs",
        lines=(lines or {}).get("lines", []),
        logs_error=logs_error,
        stream=f"/api/v1{_base(org, app_id)}/logs/stream?tail=200",
    )


@page_get(f"{APP}/stats")
async def stats_page(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    stats, stats_error = await _optional(Api.of(request).get(f"{_base(org, app_id)}/stats"))
    return await _app_page(
        request,
        org,
        app_id,
        "apps/stats.html",
        "stats",
        stats=stats or [],
        stats_error=stats_error,
        stats_url=f"/api/v1{_base(org, app_id)}/stats",
    )


@page_get(f"{APP}/stats/table")
async def stats_fragment(
    request: AnyRequest, org: FromPath[str], app_id: FromPath[int]
) -> Response[Any]:
    stats, stats_error = await _optional(Api.of(request).get(f"{_base(org, app_id)}/stats"))
    return fragment("apps/_stats.html", stats=stats or [], stats_error=stats_error)


ROUTES: list[Any] = [
    app_new,
    app_create,
    app_overview,
    app_status_fragment,
    app_start,
    app_stop,
    app_restart,
    app_scale,
    app_delete,
    settings_page,
    settings_submit,
    deploy_page,
    deploy_submit,
    deployments_page,
    deployment_page,
    deployment_cancel,
    releases_page,
    release_rollback,
    env_page,
    env_set,
    env_unset,
    domains_page,
    domain_add,
    domain_verify,
    domain_update,
    domain_delete,
    logs_page,
    stats_page,
    stats_fragment,
]
