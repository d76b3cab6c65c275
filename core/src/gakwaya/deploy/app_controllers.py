"""HTTP routes of projects, environments, apps and their variables.

Thin: the middleware has resolved the caller, the organization (404 for non-members)
and the permission; handlers call a service, commit, then publish events. Audit
details name keys and fields, never a variable's value or a credential.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext, Principal, set_audit_target
from gakwaya.db.models import Environment, Project
from gakwaya.deploy import apps, envvars, projects
from gakwaya.deploy.events import AppCreated, AppDeleted, AppEnvChanged, AppUpdated
from gakwaya.deploy.schemas import (
    AppCreate,
    AppUpdate,
    AppView,
    EnvironmentCreate,
    EnvironmentView,
    EnvList,
    EnvSet,
    EnvVarView,
    ProjectCreate,
    ProjectUpdate,
    ProjectView,
)
from gakwaya.kernel import Kernel
from gakwaya.orgs.events import commit_and_publish
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, parse_cursor
from gakwaya_sdk.events import Event

ORG = "/api/v1/orgs/{org:str}"
PROJECT = f"{ORG}/projects/{{project:str}}"
ENVIRONMENTS = f"{PROJECT}/environments"
APP = f"{ORG}/apps/{{app_id:int}}"
AnyRequest = Request[Any, Any, Any]


def project_view(db: Session, project: Project) -> ProjectView:
    return ProjectView(
        id=project.id,
        name=project.name,
        description=project.description,
        environments=projects.environment_names(db, project.id),
        created_at=project.created_at,
    )


def environment_view(env: Environment, project: str) -> EnvironmentView:
    return EnvironmentView(id=env.id, project=project, name=env.name, created_at=env.created_at)


def env_list(rows: list[envvars.EnvVarRow], deployment_id: int | None = None) -> EnvList:
    return EnvList(
        items=[
            EnvVarView(key=r.key, secret=r.secret, value=r.value, updated_at=r.updated_at)
            for r in rows
        ],
        deployment_id=deployment_id,
    )


# Projects --------------------------------------------------------------------------------


@get(
    f"{ORG}/projects",
    operation_id="projects_list",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.read"},
)
def projects_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[ProjectView]:
    rows, nxt = projects.list_projects(db, current_org.id, cursor=parse_cursor(cursor), limit=limit)
    return Page(items=[project_view(db, p) for p in rows], next_cursor=nxt)


@post(
    f"{ORG}/projects",
    operation_id="projects_create",
    tags=["projects"],
    sync_to_thread=True,
    status_code=201,
    opt={"permission": "projects.write"},
)
def projects_create(
    request: AnyRequest,
    data: JSONBody[ProjectCreate],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> ProjectView:
    """Create a project with its first environment, ``production``."""
    project = projects.create_project(
        db, org_id=current_org.id, name=data.name, description=data.description
    )
    view = project_view(db, project)
    db.commit()
    set_audit_target(request, "project", project.id, name=project.name)
    return view


@get(
    PROJECT,
    operation_id="projects_show",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.read"},
)
def projects_show(
    project: FromPath[str],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> ProjectView:
    return project_view(db, projects.get_project(db, current_org.id, project))


@patch(
    PROJECT,
    operation_id="projects_update",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.write"},
)
def projects_update(
    request: AnyRequest,
    project: FromPath[str],
    data: JSONBody[ProjectUpdate],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> ProjectView:
    """Change the description (the name is in every URL and never changes)."""
    row = projects.update_project(
        db, org_id=current_org.id, name=project, description=data.description
    )
    view = project_view(db, row)
    db.commit()
    set_audit_target(request, "project", row.id, name=row.name)
    return view


@delete(
    PROJECT,
    operation_id="projects_delete",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.write"},
)
def projects_delete(
    request: AnyRequest,
    project: FromPath[str],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Delete a project and its environments. A project with apps is a 409 naming
    them: delete the apps first."""
    row = projects.delete_project(db, org_id=current_org.id, name=project)
    db.commit()
    set_audit_target(request, "project", row.id, name=row.name)


# Environments ----------------------------------------------------------------------------


@get(
    ENVIRONMENTS,
    operation_id="environments_list",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.read"},
)
def environments_list(
    project: FromPath[str],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[EnvironmentView]:
    rows, nxt = projects.list_environments(
        db, current_org.id, project, cursor=parse_cursor(cursor), limit=limit
    )
    return Page(items=[environment_view(e, project) for e in rows], next_cursor=nxt)


@post(
    ENVIRONMENTS,
    operation_id="environments_create",
    tags=["projects"],
    sync_to_thread=True,
    status_code=201,
    opt={"permission": "projects.write"},
)
def environments_create(
    request: AnyRequest,
    project: FromPath[str],
    data: JSONBody[EnvironmentCreate],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> EnvironmentView:
    env = projects.create_environment(db, org_id=current_org.id, project=project, name=data.name)
    db.commit()
    set_audit_target(request, "environment", env.id, project=project, name=env.name)
    return environment_view(env, project)


@get(
    f"{ENVIRONMENTS}/{{environment:str}}",
    operation_id="environments_show",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.read"},
)
def environments_show(
    project: FromPath[str],
    environment: FromPath[str],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> EnvironmentView:
    env = projects.get_environment(db, current_org.id, project, environment)
    return environment_view(env, project)


@delete(
    f"{ENVIRONMENTS}/{{environment:str}}",
    operation_id="environments_delete",
    tags=["projects"],
    sync_to_thread=True,
    opt={"permission": "projects.write"},
)
def environments_delete(
    request: AnyRequest,
    project: FromPath[str],
    environment: FromPath[str],
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Delete an environment; one with apps is a 409 naming them."""
    env = projects.delete_environment(db, org_id=current_org.id, project=project, name=environment)
    db.commit()
    set_audit_target(request, "environment", env.id, project=project, name=env.name)


# Apps ------------------------------------------------------------------------------------


@get(
    f"{ORG}/apps",
    operation_id="apps_list",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.read"},
)
def apps_list(
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    project: Annotated[
        str | None, QueryParameter(description="only apps of this project (by name)")
    ] = None,
    environment: Annotated[
        str | None, QueryParameter(description="only apps of environments with this name")
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[AppView]:
    rows, nxt = apps.list_apps(
        db,
        current_org.id,
        project=project,
        environment=environment,
        cursor=parse_cursor(cursor),
        limit=limit,
    )
    return Page(items=[apps.app_view(r, kernel.installation_id) for r in rows], next_cursor=nxt)


@post(
    f"{ORG}/apps",
    operation_id="apps_create",
    tags=["apps"],
    sync_to_thread=True,
    status_code=201,
    opt={"permission": "apps.write"},
)
def apps_create(
    request: AnyRequest,
    data: JSONBody[AppCreate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> AppView:
    """Create an app in an environment of a project. It gets a host port at once and
    keeps it; nothing runs until its first deployment."""
    app, row = apps.create_app(db, kernel, org_id=current_org.id, data=data)
    events: list[Event] = [AppCreated(org_id=current_org.id, app_id=app.id, name=app.name)]
    commit_and_publish(db, kernel, events)
    set_audit_target(
        request,
        "app",
        app.id,
        name=app.name,
        project=data.project,
        environment=data.environment,
        git_credentials=data.git_credentials is not None,
    )
    return apps.app_view(row, kernel.installation_id)


@get(
    APP,
    operation_id="apps_show",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.read"},
)
def apps_show(
    app_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> AppView:
    return apps.app_view(apps.get_app_row(db, current_org.id, app_id), kernel.installation_id)


@patch(
    APP,
    operation_id="apps_update",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.write"},
)
def apps_update(
    request: AnyRequest,
    app_id: FromPath[int],
    data: JSONBody[AppUpdate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> AppView:
    """Change the fields present in the body; the next deployment uses them."""
    app, changed = apps.update_app(db, kernel, org_id=current_org.id, app_id=app_id, data=data)
    events: list[Event] = (
        [AppUpdated(org_id=current_org.id, app_id=app.id, fields=changed)] if changed else []
    )
    view = apps.app_view(apps.get_app_row(db, current_org.id, app.id), kernel.installation_id)
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "app", app.id, fields=changed)
    return view


@delete(
    APP,
    operation_id="apps_delete",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "apps.delete"},
)
def apps_delete(
    request: AnyRequest,
    app_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Delete the app with its variables, releases and deployments; a job stops and
    removes its containers and images."""
    app = apps.delete_app(db, org_id=current_org.id, app_id=app_id)
    name = app.name
    commit_and_publish(db, kernel, [AppDeleted(org_id=current_org.id, app_id=app_id, name=name)])
    set_audit_target(request, "app", app_id, name=name)
    job_id = apps.enqueue_teardown(
        kernel, app_id=app_id, org_id=current_org.id, created_by=principal.label
    )
    set_audit_target(request, "app", app_id, name=name, teardown_job=job_id)


# Environment variables -------------------------------------------------------------------


@get(
    f"{APP}/env",
    operation_id="env_list",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "env.read"},
)
def env_list_route(
    app_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
) -> EnvList:
    """Every variable, sorted by key; a secret one shows ``value: null``."""
    app = apps.get_app(db, current_org.id, app_id)
    return env_list(envvars.list_vars(kernel.box, db, app))


@patch(
    f"{APP}/env",
    operation_id="env_set",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "env.write"},
)
def env_set(
    request: AnyRequest,
    app_id: FromPath[int],
    data: JSONBody[EnvSet],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> EnvList:
    """Set variables (``null`` unsets one), all or nothing; with ``redeploy``, queue a
    deployment that uses them."""
    app = apps.get_app(db, current_org.id, app_id, for_update=True)
    changed = envvars.set_vars(kernel.box, db, app, data.vars)
    deployment_id = None
    if data.redeploy:
        deployment_id = envvars.redeploy(db, kernel, app, created_by=principal.label)
    events: list[Event] = (
        [AppEnvChanged(org_id=current_org.id, app_id=app_id, keys=changed)] if changed else []
    )
    view = env_list(envvars.list_vars(kernel.box, db, app), deployment_id)
    commit_and_publish(db, kernel, events)
    set_audit_target(
        request, "app", app_id, keys=changed, redeploy=data.redeploy, deployment_id=deployment_id
    )
    return view


@delete(
    f"{APP}/env/{{key:str}}",
    operation_id="env_unset",
    tags=["apps"],
    sync_to_thread=True,
    opt={"permission": "env.write"},
)
def env_unset(
    request: AnyRequest,
    app_id: FromPath[int],
    key: FromPath[str],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
    redeploy: FromQuery[bool] = False,
) -> None:
    """Unset one variable (404 when the app has none by that name); ``?redeploy=true``
    queues a deployment without it."""
    app = apps.get_app(db, current_org.id, app_id, for_update=True)
    envvars.unset_var(db, app, key)
    deployment_id = None
    if redeploy:
        deployment_id = envvars.redeploy(db, kernel, app, created_by=principal.label)
    commit_and_publish(
        db, kernel, [AppEnvChanged(org_id=current_org.id, app_id=app_id, keys=[key])]
    )
    set_audit_target(
        request, "app", app_id, keys=[key], redeploy=redeploy, deployment_id=deployment_id
    )


ROUTES: list[Any] = [
    projects_list,
    projects_create,
    projects_show,
    projects_update,
    projects_delete,
    environments_list,
    environments_create,
    environments_show,
    environments_delete,
    apps_list,
    apps_create,
    apps_show,
    apps_update,
    apps_delete,
    env_list_route,
    env_set,
    env_unset,
]
