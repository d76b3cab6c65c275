"""Projects and their environments: the rules, shared by the API and the CLI.

Both are addressed by name inside their organization (a project) or project (an
environment), always through :mod:`gakwaya.orgs.scoped`, so another organization's
project is a 404. Nothing with apps in it is deleted: the caller deletes the apps
first, on purpose, because deleting an app stops what it runs.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Environment, Project
from gakwaya.errors import Conflict, NotFound
from gakwaya.orgs.scoped import get_in_org, in_org
from gakwaya.orgs.services import FieldConflict
from gakwaya.pagination import next_cursor

#: The environment every new project starts with.
DEFAULT_ENVIRONMENT = "production"
#: How many app names a 409 quotes before "and N more".
_NAMED = 10


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return shown + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")


def get_project(db: Session, org_id: int, name: str, *, for_update: bool = False) -> Project:
    return get_in_org(
        db, Project, name, org_id, what="project", column=Project.name, for_update=for_update
    )


def get_environment(db: Session, org_id: int, project: str, name: str) -> Environment:
    proj = get_project(db, org_id, project)
    env = db.scalars(
        in_org(Environment, org_id).where(
            Environment.project_id == proj.id, Environment.name == name
        )
    ).first()
    if env is None:
        raise NotFound(f"environment {name} not found in project {project}")
    return env


def environment_names(db: Session, project_id: int) -> list[str]:
    return list(
        db.scalars(
            select(Environment.name)
            .where(Environment.project_id == project_id)
            .order_by(Environment.id)
        ).all()
    )


def create_project(db: Session, *, org_id: int, name: str, description: str = "") -> Project:
    """A project with its ``production`` environment."""
    taken = FieldConflict("name", f"a project named {name!r} already exists; choose another name")
    if db.scalar(in_org(Project, org_id).where(Project.name == name)) is not None:
        raise taken
    project = Project(org_id=org_id, name=name, description=description, created_at=utcnow())
    db.add(project)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:  # made by someone else a moment ago
        raise taken from None
    db.add(Environment(org_id=org_id, project_id=project.id, name=DEFAULT_ENVIRONMENT))
    db.flush()
    return project


def list_projects(
    db: Session, org_id: int, *, cursor: int | None = None, limit: int = 50
) -> tuple[list[Project], str | None]:
    query = in_org(Project, org_id)
    if cursor is not None:
        query = query.where(Project.id < cursor)
    rows = list(db.scalars(query.order_by(Project.id.desc()).limit(limit + 1)).all())
    return rows[:limit], next_cursor([p.id for p in rows], limit)


def update_project(db: Session, *, org_id: int, name: str, description: str) -> Project:
    project = get_project(db, org_id, name, for_update=True)
    project.description = description
    db.flush()
    return project


def _app_names(db: Session, *conditions: object) -> list[str]:
    return [
        f"{env}/{app}"
        for env, app in db.execute(
            select(Environment.name, App.name)
            .join(App, App.environment_id == Environment.id)
            .where(*conditions)  # type: ignore[arg-type]
            .order_by(Environment.name, App.name)
        ).all()
    ]


def delete_project(db: Session, *, org_id: int, name: str) -> Project:
    """Delete an empty project with its environments; 409 naming its apps otherwise."""
    project = get_project(db, org_id, name, for_update=True)
    apps = _app_names(db, Environment.project_id == project.id, App.org_id == org_id)
    if apps:
        raise Conflict(
            f"project {name} still has {len(apps)} app(s): {_names(apps)}; delete them first"
        )
    db.delete(project)
    db.flush()
    return project


def create_environment(db: Session, *, org_id: int, project: str, name: str) -> Environment:
    proj = get_project(db, org_id, project)
    taken = FieldConflict(
        "name", f"project {project} already has an environment named {name!r}; choose another"
    )
    exists = db.scalar(
        in_org(Environment, org_id).where(
            Environment.project_id == proj.id, Environment.name == name
        )
    )
    if exists is not None:
        raise taken
    env = Environment(org_id=org_id, project_id=proj.id, name=name, created_at=utcnow())
    db.add(env)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise taken from None
    return env


def list_environments(
    db: Session, org_id: int, project: str, *, cursor: int | None = None, limit: int = 50
) -> tuple[list[Environment], str | None]:
    proj = get_project(db, org_id, project)
    query = in_org(Environment, org_id).where(Environment.project_id == proj.id)
    if cursor is not None:
        query = query.where(Environment.id < cursor)
    rows = list(db.scalars(query.order_by(Environment.id.desc()).limit(limit + 1)).all())
    return rows[:limit], next_cursor([e.id for e in rows], limit)


def delete_environment(db: Session, *, org_id: int, project: str, name: str) -> Environment:
    """Delete an environment without apps; 409 naming its apps otherwise."""
    env = get_environment(db, org_id, project, name)
    apps = _app_names(db, App.environment_id == env.id, App.org_id == org_id)
    if apps:
        raise Conflict(
            f"environment {project}/{name} still has {len(apps)} app(s): {_names(apps)}; "
            "delete them first"
        )
    db.delete(env)
    db.flush()
    return env
