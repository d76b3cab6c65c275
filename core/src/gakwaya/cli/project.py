"""``gakwaya project``: projects and their environments from the server's command line.

The same services and request Structs as ``/api/v1/orgs/{org}/projects``: a value
the API refuses is refused here with the option's name and the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, run, validated
from gakwaya.errors import FieldError

ORG_OPTION = click.option("--org", "org_slug", required=True, help="The organization's slug.")


@contextmanager
def field_errors(options: dict[str, str]) -> Iterator[None]:
    """A service's FieldError names the API field; name the CLI option instead
    (``{"vars.*": "KEY {}"}`` names ``vars.DEBUG`` as ``KEY DEBUG``)."""
    try:
        yield
    except FieldError as exc:
        top, _, rest = exc.field.partition(".")
        option = (
            options.get(exc.field)
            or (options[f"{top}.*"].format(rest) if f"{top}.*" in options and rest else None)
            or options.get(top)
            or f"--{top.replace('_', '-')}"
        )
        fail(f"{option}: {exc.rule}", code=2 if exc.status_code == 422 else 1)


def each_page(fetch: Callable[[int | None], tuple[list[Any], str | None]]) -> list[Any]:
    """Every row of a paginated service list."""
    rows: list[Any] = []
    cursor: int | None = None
    while True:
        page, nxt = fetch(cursor)
        rows.extend(page)
        if nxt is None:
            return rows
        cursor = int(nxt)


@main.group("project")
def project_group() -> None:
    """Manage projects (and their environments) of an organization."""


@project_group.command("list")
@ORG_OPTION
def list_(org_slug: str) -> None:
    """Every project with its environments."""
    from gakwaya.deploy import projects
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            rows = each_page(lambda c: projects.list_projects(db, org.id, cursor=c, limit=200))
            lines = [(p, projects.environment_names(db, p.id)) for p in rows]
        if not lines:
            click.echo(f"no projects in {org_slug!r} (create one with: gakwaya project create)")
            return
        click.echo(f"{'NAME':<40}  {'ENVIRONMENTS':<30}  DESCRIPTION")
        for project, envs in lines:
            click.echo(f"{project.name:<40}  {','.join(envs):<30}  {project.description}")

    run(work)


@project_group.command("create")
@ORG_OPTION
@click.argument("name")
@click.option("--description", default="", help="A line about the project.")
def create(org_slug: str, name: str, description: str) -> None:
    """Create a project with its first environment, production.

    \b
    Example:
      gakwaya project create --org acme shop --description "The web shop"
    """
    from gakwaya.deploy import projects
    from gakwaya.deploy.schemas import ProjectCreate
    from gakwaya.orgs import services as orgs

    data = validated(ProjectCreate, {"name": "NAME"}, name=name, description=description)

    def work(kernel: Any) -> None:
        with field_errors({"name": "NAME"}), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            project = projects.create_project(
                db, org_id=org.id, name=data.name, description=data.description
            )
            org_id, project_id = org.id, project.id
        audit(
            kernel,
            "project create",
            "projects_create",
            org_id=org_id,
            target_type="project",
            target_id=str(project_id),
            detail={"name": data.name},
        )
        click.secho(f"created project {data.name!r} with environment 'production'", fg="green")

    run(work)


@project_group.command("show")
@ORG_OPTION
@click.argument("name")
def show(org_slug: str, name: str) -> None:
    """A project, its environments and its apps."""
    from gakwaya.deploy import apps, projects
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            project = projects.get_project(db, org.id, name)
            envs = projects.environment_names(db, project.id)
            rows = each_page(
                lambda c: apps.list_apps(db, org.id, project=name, cursor=c, limit=200)
            )
        click.echo(f"name:         {project.name}")
        click.echo(f"description:  {project.description}")
        click.echo(f"created:      {project.created_at:%Y-%m-%d %H:%M}")
        click.echo(f"environments: {', '.join(envs) or '-'}")
        click.echo(
            "apps:         "
            + (
                ", ".join(f"{r.environment}/{r.app.name} (id {r.app.id})" for r in reversed(rows))
                or "-"
            )
        )

    run(work)


@project_group.command("update")
@ORG_OPTION
@click.argument("name")
@click.option("--description", required=True, help="The new description.")
def update(org_slug: str, name: str, description: str) -> None:
    """Change a project's description (its name never changes)."""
    from gakwaya.deploy import projects
    from gakwaya.deploy.schemas import ProjectUpdate
    from gakwaya.orgs import services as orgs

    data = validated(ProjectUpdate, {}, description=description)

    def work(kernel: Any) -> None:
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            project = projects.update_project(
                db, org_id=org.id, name=name, description=data.description
            )
            org_id, project_id = org.id, project.id
        audit(
            kernel,
            "project update",
            "projects_update",
            org_id=org_id,
            target_type="project",
            target_id=str(project_id),
            detail={"name": name},
        )
        click.secho(f"updated project {name!r}", fg="green")

    run(work)


@project_group.command("delete")
@ORG_OPTION
@click.argument("name")
def delete(org_slug: str, name: str) -> None:
    """Delete a project and its environments; refused while it has apps."""
    from gakwaya.deploy import projects
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            project = projects.delete_project(db, org_id=org.id, name=name)
            org_id, project_id = org.id, project.id
        audit(
            kernel,
            "project delete",
            "projects_delete",
            org_id=org_id,
            target_type="project",
            target_id=str(project_id),
            detail={"name": name},
        )
        click.secho(f"deleted project {name!r}", fg="green")

    run(work)


# Environments ----------------------------------------------------------------------------


@project_group.group("env")
def env_group() -> None:
    """Manage the environments of a project (production, staging, …)."""


@env_group.command("list")
@ORG_OPTION
@click.argument("project")
def env_list(org_slug: str, project: str) -> None:
    """The environments of PROJECT."""
    from gakwaya.deploy import projects
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            rows = each_page(
                lambda c: projects.list_environments(db, org.id, project, cursor=c, limit=200)
            )
        for env in reversed(rows):
            click.echo(f"{env.name:<40}  created {env.created_at:%Y-%m-%d %H:%M}")

    run(work)


@env_group.command("create")
@ORG_OPTION
@click.argument("project")
@click.argument("name")
def env_create(org_slug: str, project: str, name: str) -> None:
    """Add environment NAME to PROJECT.

    \b
    Example:
      gakwaya project env create --org acme shop staging
    """
    from gakwaya.deploy import projects
    from gakwaya.deploy.schemas import EnvironmentCreate
    from gakwaya.orgs import services as orgs

    data = validated(EnvironmentCreate, {"name": "NAME"}, name=name)

    def work(kernel: Any) -> None:
        with field_errors({"name": "NAME"}), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            env = projects.create_environment(db, org_id=org.id, project=project, name=data.name)
            org_id, env_id = org.id, env.id
        audit(
            kernel,
            "project env create",
            "environments_create",
            org_id=org_id,
            target_type="environment",
            target_id=str(env_id),
            detail={"project": project, "name": data.name},
        )
        click.secho(f"created environment {project}/{data.name}", fg="green")

    run(work)


@env_group.command("delete")
@ORG_OPTION
@click.argument("project")
@click.argument("name")
def env_delete(org_slug: str, project: str, name: str) -> None:
    """Delete environment NAME of PROJECT; refused while it has apps."""
    from gakwaya.deploy import projects
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            env = projects.delete_environment(db, org_id=org.id, project=project, name=name)
            org_id, env_id = org.id, env.id
        audit(
            kernel,
            "project env delete",
            "environments_delete",
            org_id=org_id,
            target_type="environment",
            target_id=str(env_id),
            detail={"project": project, "name": name},
        )
        click.secho(f"deleted environment {project}/{name}", fg="green")

    run(work)
