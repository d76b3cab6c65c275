"""Organizations, projects and environments: the overview a member lands on.

``/orgs/new`` creates an organization; ``/orgs/{org}`` shows projects, their
environments and the apps in each, with the forms to add a project or an app;
``/orgs/{org}/projects/{project}`` edits the description and adds and removes
environments.

Both list apps, and an organization can have more apps than the API returns at once
(200): an app list is one page of the API's own list, newest first, with the API's
``cursor`` in the page's URL and its ``project`` and ``environment`` filters in a
small form, so every app stays reachable however many there are.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from litestar import Response
from litestar.params import FromPath, FromQuery

from gakwaya_webui.api import Api, ApiError
from gakwaya_webui.forms import Form, ask_confirmation, confirmed, text
from gakwaya_webui.pages._common import PAGE_SIZE, AnyRequest, all_items, can, org_of, seg
from gakwaya_webui.render import form_errors, page, redirect
from gakwaya_webui.routing import page_get, page_post

PROJECT_FIELDS = ("name", "description")


# New organization ------------------------------------------------------------------------


@page_get("/orgs/new")
async def org_new(request: AnyRequest) -> Response[Any]:
    await Api.of(request).get("/account")
    return await page(request, "orgs/new.html", values={}, field_errors={}, error=None)


@page_post("/orgs/new")
async def org_create(request: AnyRequest, data: Form) -> Response[Any]:
    values = {"slug": text(data, "slug"), "name": text(data, "name")}
    try:
        created = await Api.of(request, csrf=text(data, "csrf_token")).post("/orgs", values)
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = form_errors(exc, ("slug", "name"))
        return await page(
            request,
            "orgs/new.html",
            status=exc.status,
            values=values,
            field_errors=fields,
            error=general,
        )
    return redirect(f"/orgs/{created['slug']}", flash=f"Organization {created['name']} created.")


# Overview ------------------------------------------------------------------------------


def _clean(value: str | None) -> str:
    return (value or "").strip()


async def _apps_page(
    api: Api, org: str, *, project: str, environment: str, cursor: str | None
) -> dict[str, Any]:
    """One page of the API's app list, filtered as the browser's URL asks."""
    listing: dict[str, Any] = await api.get(
        f"/orgs/{seg(org)}/apps",
        {"limit": PAGE_SIZE, "project": project, "environment": environment, "cursor": cursor},
    )
    return listing


def _paging(
    path: str, filters: dict[str, str], cursor: str | None, next_cursor: str | None
) -> dict[str, Any]:
    """Links to the first and the next page of an app list, keeping its filters, and
    whether the list is split at all: then an environment without an app on this page
    may have some on another, and the page must not say it has none."""
    kept = {k: v for k, v in filters.items() if v}
    return {
        "cursor": cursor,
        "paged": bool(cursor or next_cursor),
        "filtered": bool(kept),
        "first_url": path + (f"?{urlencode(kept)}" if kept else ""),
        "next_url": (
            f"{path}?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None
        ),
    }


async def _overview(
    request: AnyRequest,
    org: str,
    *,
    status: int = 200,
    project: str | None = None,
    environment: str | None = None,
    cursor: str | None = None,
    **extra: Any,
) -> Response[Any]:
    api = Api.of(request)
    info = await org_of(api, org)
    filters = {"project": _clean(project), "environment": _clean(environment)}
    project_list, apps_page = await asyncio.gather(
        all_items(api, f"/orgs/{seg(org)}/projects"),
        _apps_page(api, org, cursor=cursor, **filters),
    )
    projects = sorted(project_list, key=lambda p: p["name"])
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for app in apps_page["items"]:
        grouped[(app["project"], app["environment"])].append(app)
    for apps in grouped.values():
        apps.sort(key=lambda a: a["name"])
    role = info.get("role")
    # The sections the filters leave: the API filtered the apps, this the headings.
    wanted_env = filters["environment"]
    shown = [
        {**p, "environments": [e for e in p["environments"] if not wanted_env or e == wanted_env]}
        for p in projects
        if (not filters["project"] or p["name"] == filters["project"])
        and (not wanted_env or wanted_env in p["environments"])
    ]
    context: dict[str, Any] = {
        "info": info,
        "role": role,
        "projects": shown,
        "has_projects": bool(projects),
        "project_names": [p["name"] for p in projects],
        "environment_names": sorted({e for p in projects for e in p["environments"]}),
        "filters": filters,
        "apps_by_env": grouped,
        "app_count": len(apps_page["items"]),
        **_paging(f"/orgs/{seg(org)}", filters, cursor, apps_page.get("next_cursor")),
        "can_write_projects": can(request, role, "projects.write"),
        "can_write_apps": can(request, role, "apps.write"),
        "values": {},
        "field_errors": {},
        "error": None,
        "org_actions": _org_actions(request, org, role),
    }
    context.update(extra)
    return await page(request, "orgs/overview.html", status=status, **context)


def _org_actions(request: AnyRequest, org: str, role: str | None) -> list[Any]:
    try:
        from gakwaya_webui.contributions import org_actions
    except ImportError:  # pragma: no cover
        return []
    try:
        return list(org_actions(request, org=org, role=role))
    except Exception:
        return []


@page_get("/orgs/{org:str}")
async def org_overview(
    request: AnyRequest,
    org: FromPath[str],
    project: FromQuery[str | None] = None,
    environment: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[Any]:
    return await _overview(request, org, project=project, environment=environment, cursor=cursor)


@page_post("/orgs/{org:str}/projects")
async def project_create(request: AnyRequest, org: FromPath[str], data: Form) -> Response[Any]:
    values = {"name": text(data, "name"), "description": text(data, "description")}
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"/orgs/{seg(org)}/projects", values
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, PROJECT_FIELDS)
        return await _overview(
            request, org, status=exc.status, values=values, field_errors=fields, error=general
        )
    return redirect(
        f"/orgs/{seg(org)}#project-{values['name']}",
        flash=f"Project {values['name']} created, with a production environment.",
    )


# A project -----------------------------------------------------------------------------


async def _project(
    request: AnyRequest,
    org: str,
    project: str,
    *,
    status: int = 200,
    environment: str | None = None,
    cursor: str | None = None,
    **extra: Any,
) -> Response[Any]:
    api = Api.of(request)
    info = await org_of(api, org)
    filters = {"environment": _clean(environment)}
    detail, environments, apps_page = await asyncio.gather(
        api.get(f"/orgs/{seg(org)}/projects/{seg(project)}"),
        all_items(api, f"/orgs/{seg(org)}/projects/{seg(project)}/environments"),
        _apps_page(api, org, project=project, cursor=cursor, **filters),
    )
    role = info.get("role")
    context: dict[str, Any] = {
        "info": info,
        "role": role,
        "project": detail,
        "environments": environments,
        "apps": apps_page["items"],
        "filters": filters,
        **_paging(
            f"/orgs/{seg(org)}/projects/{seg(project)}",
            filters,
            cursor,
            apps_page.get("next_cursor"),
        ),
        "can_write_projects": can(request, role, "projects.write"),
        "values": {},
        "field_errors": {},
        "error": None,
    }
    context.update(extra)
    return await page(request, "orgs/project.html", status=status, **context)


@page_get("/orgs/{org:str}/projects/{project:str}")
async def project_page(
    request: AnyRequest,
    org: FromPath[str],
    project: FromPath[str],
    environment: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[Any]:
    return await _project(request, org, project, environment=environment, cursor=cursor)


@page_post("/orgs/{org:str}/projects/{project:str}")
async def project_update(
    request: AnyRequest, org: FromPath[str], project: FromPath[str], data: Form
) -> Response[Any]:
    """The project's description: what projects_update changes (the name is in every
    URL and never changes)."""
    values = {"description": text(data, "description")}
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).patch(
            f"/orgs/{seg(org)}/projects/{seg(project)}", values
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("description",))
        return await _project(
            request,
            org,
            project,
            status=exc.status,
            values=values,
            field_errors=fields,
            error=general,
        )
    return redirect(f"/orgs/{seg(org)}/projects/{seg(project)}", flash="Description saved.")


@page_post("/orgs/{org:str}/projects/{project:str}/environments")
async def environment_create(
    request: AnyRequest, org: FromPath[str], project: FromPath[str], data: Form
) -> Response[Any]:
    values = {"name": text(data, "name")}
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).post(
            f"/orgs/{seg(org)}/projects/{seg(project)}/environments", values
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("name",))
        return await _project(
            request,
            org,
            project,
            status=exc.status,
            values=values,
            field_errors=fields,
            error=general,
        )
    return redirect(
        f"/orgs/{seg(org)}/projects/{seg(project)}", flash=f"Environment {values['name']} added."
    )


@page_post("/orgs/{org:str}/projects/{project:str}/environments/{environment:str}/delete")
async def environment_delete(
    request: AnyRequest,
    org: FromPath[str],
    project: FromPath[str],
    environment: FromPath[str],
    data: Form,
) -> Response[Any]:
    back = f"/orgs/{seg(org)}/projects/{seg(project)}"
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Delete the environment {environment} of {project}? It must have no apps.",
            label="Delete environment",
            back=back,
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).delete(
            f"/orgs/{seg(org)}/projects/{seg(project)}/environments/{seg(environment)}"
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return await _project(request, org, project, status=exc.status, error=exc.detail)
    return redirect(back, flash=f"Environment {environment} deleted.")


@page_post("/orgs/{org:str}/projects/{project:str}/delete")
async def project_delete(
    request: AnyRequest, org: FromPath[str], project: FromPath[str], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Delete the project {project}? It must have no apps left.",
            label="Delete project",
            back=f"/orgs/{seg(org)}/projects/{seg(project)}",
        )
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).delete(
            f"/orgs/{seg(org)}/projects/{seg(project)}"
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return await _project(request, org, project, status=exc.status, error=exc.detail)
    return redirect(f"/orgs/{seg(org)}", flash=f"Project {project} deleted.")


@page_get("/orgs/{org:str}/apps")
async def apps_index(request: AnyRequest, org: FromPath[str]) -> Response[Any]:
    # The overview lists the apps; this URL is where "back to apps" links lead.
    return redirect(f"/orgs/{seg(org)}")


ROUTES: list[Any] = [
    org_new,
    org_create,
    org_overview,
    project_create,
    project_page,
    project_update,
    environment_create,
    environment_delete,
    project_delete,
    apps_index,
]
