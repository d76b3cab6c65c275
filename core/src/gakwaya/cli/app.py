"""``gakwaya app``: apps and their environment variables from the server's command line.

The same services and request Structs as ``/api/v1/orgs/{org}/apps``, so a value the
API refuses (a git URL with ``ext::``, a path with ``..``) is refused here too, with
the option's name and the rule. An app is named by its id or by
``project/environment/name``.

Secrets stay out of shell history: ``app env set … KEY`` (no ``=``) reads KEY's
value from standard input (or a hidden prompt), ``--https-token-stdin`` reads a git
token the same way, and ``--ssh-key-file`` reads a deploy key from a file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, publish, run, validated
from gakwaya.cli.project import ORG_OPTION, each_page, field_errors

#: API field → the option that sets it, for error messages.
OPTIONS = {
    "name": "NAME",
    "health.kind": "--health-kind",
    "health.path": "--health-path",
    "health.interval": "--health-interval",
    "health.timeout": "--health-timeout",
    "health.retries": "--health-retries",
    "git_credentials": "--ssh-key-file/--https-token-stdin",
    "git_credentials.ssh_private_key": "--ssh-key-file",
    "git_credentials.https_token": "--https-token-stdin",
    "git_credentials.https_username": "--https-username",
}
ACTOR = "cli"


def _source_options(func: Any) -> Any:
    """Options shared by ``app create`` and ``app update`` (None: not given)."""
    options = [
        click.option(
            "--source-type",
            type=click.Choice(["git", "image"]),
            default=None,
            help="git (build from a repository) or image (run an image); "
            "default for create: image when only --image is given.",
        ),
        click.option("--git-url", default=None, help="https://, ssh:// or user@host:path URL."),
        click.option("--git-ref", default=None, help="Branch, tag or commit (default main)."),
        click.option(
            "--subdirectory", default=None, help="Build from this path of the repository."
        ),
        click.option("--dockerfile", default=None, help="Dockerfile path (default Dockerfile)."),
        click.option("--image", default=None, help="Image reference, for an image source."),
        click.option("--port", type=int, default=None, help="Port the app listens on (8000)."),
        click.option("--replicas", type=int, default=None, help="Containers to run (1)."),
        click.option("--cpu", type=float, default=None, help="CPU cores limit, 0.05 to 64."),
        click.option("--memory-mb", type=int, default=None, help="Memory limit in MiB."),
        click.option("--health-kind", default=None, help="http, tcp (default) or none."),
        click.option("--health-path", default=None, help="Path of the HTTP health check."),
        click.option("--health-interval", type=float, default=None, help="Seconds."),
        click.option("--health-timeout", type=float, default=None, help="Seconds."),
        click.option("--health-retries", type=int, default=None, help="Failed checks allowed."),
        click.option(
            "--restart-policy",
            default=None,
            help="no, on-failure, always or unless-stopped (default).",
        ),
        click.option(
            "--ssh-key-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Deploy key (private) for ssh URLs.",
        ),
        click.option(
            "--https-token-stdin",
            is_flag=True,
            help="Read an HTTPS access token from standard input.",
        ),
        click.option("--https-username", default=None, help="User name sent with the token."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_secret(what: str) -> str:
    """A secret from standard input (its final newline dropped) or a hidden prompt."""
    if sys.stdin.isatty():
        value: str = click.prompt(what, hide_input=True)
        return value
    text = sys.stdin.read()
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def _credentials(
    ssh_key_file: Path | None, https_token_stdin: bool, https_username: str | None
) -> dict[str, Any] | None:
    if ssh_key_file is not None and https_token_stdin:
        fail("--ssh-key-file and --https-token-stdin: give one of them", code=2)
    if ssh_key_file is not None:
        return {"ssh_private_key": ssh_key_file.read_text()}
    if https_token_stdin:
        token = _read_secret("HTTPS token").strip()
        creds: dict[str, Any] = {"https_token": token}
        if https_username is not None:
            creds["https_username"] = https_username
        return creds
    if https_username is not None:
        fail("--https-username: only with --https-token-stdin", code=2)
    return None


def _health(values: dict[str, Any]) -> dict[str, Any]:
    """The ``--health-*`` options given, as the ``health`` object of the API."""
    return {
        part: value
        for part in ("kind", "path", "interval", "timeout", "retries")
        if (value := values.pop(f"health_{part}", None)) is not None
    }


def _describe(row: Any) -> list[str]:
    app = row.app
    if app.source_type == "git":
        source = f"git {app.git_url} @ {app.git_ref}"
        if app.subdirectory:
            source += f" (subdirectory {app.subdirectory})"
        source += f", Dockerfile {app.dockerfile}"
    else:
        source = f"image {app.image}"
    check = app.health_kind + (f" {app.health_path}" if app.health_kind == "http" else "")
    return [
        f"id:            {app.id}",
        f"name:          {row.project}/{row.environment}/{app.name}",
        f"source:        {source}",
        f"credentials:   {'yes' if app.git_credentials else 'none'}",
        f"port:          {app.port} (served on host port {app.host_port})",
        f"replicas:      {app.replicas}   state: {app.desired_state}",
        f"limits:        cpu {app.cpu or 'none'}, memory {app.memory_mb or 'none'} MiB",
        f"health check:  {check}, every {app.health_interval}s, timeout "
        f"{app.health_timeout}s, {app.health_retries} retries",
        f"restart:       {app.restart_policy}",
        f"release:       {app.current_release_id or 'none yet'}",
    ]


@main.group("app")
def app_group() -> None:
    """Manage apps and their environment variables."""


@app_group.command("list")
@ORG_OPTION
@click.option("--project", default=None, help="Only this project's apps.")
@click.option("--environment", default=None, help="Only apps of environments with this name.")
def list_(org_slug: str, project: str | None, environment: str | None) -> None:
    """Every app of the organization."""
    from gakwaya.deploy import apps
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            rows = each_page(
                lambda c: apps.list_apps(
                    db, org.id, project=project, environment=environment, cursor=c, limit=200
                )
            )
        if not rows:
            click.echo(f"no apps in {org_slug!r} (create one with: gakwaya app create)")
            return
        click.echo(f"{'ID':>5}  {'APP':<50}  {'SOURCE':<6}  {'PORT':>5}  {'REPL':>4}  STATE")
        for r in rows:
            name = f"{r.project}/{r.environment}/{r.app.name}"
            click.echo(
                f"{r.app.id:>5}  {name:<50}  {r.app.source_type:<6}  {r.app.host_port or '-':>5}  "
                f"{r.app.replicas:>4}  {r.app.desired_state}"
            )

    run(work)


@app_group.command("create")
@ORG_OPTION
@click.option("--project", required=True, help="The project's name.")
@click.option("--environment", default="production", show_default=True)
@click.argument("name")
@_source_options
def create(org_slug: str, project: str, environment: str, name: str, **values: Any) -> None:
    """Create app NAME in an environment of a project.

    \b
    Examples:
      gakwaya app create --org acme --project shop web \\
          --git-url https://github.com/acme/web.git --git-ref main --port 8000
      gakwaya app create --org acme --project shop cache --image redis:7
      gakwaya app create --org acme --project shop api \\
          --git-url git@github.com:acme/api.git --ssh-key-file ./deploy_key
    """
    from gakwaya.deploy import apps
    from gakwaya.deploy.events import AppCreated
    from gakwaya.deploy.schemas import AppCreate
    from gakwaya.orgs import services as orgs

    creds = _credentials(
        values.pop("ssh_key_file"), values.pop("https_token_stdin"), values.pop("https_username")
    )
    health = _health(values)
    given = {k: v for k, v in values.items() if v is not None}
    if "source_type" not in given and "image" in given and "git_url" not in given:
        given["source_type"] = "image"
    data = validated(
        AppCreate,
        OPTIONS | {"project": "--project", "environment": "--environment"},
        project=project,
        environment=environment,
        name=name,
        health=health,
        git_credentials=creds,
        **given,
    )

    def work(kernel: Any) -> None:
        with field_errors(OPTIONS), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            app, _row = apps.create_app(db, kernel, org_id=org.id, data=data)
            app_id, org_id, port = app.id, org.id, app.host_port
        publish(kernel, [AppCreated(org_id=org_id, app_id=app_id, name=data.name)])
        audit(
            kernel,
            "app create",
            "apps_create",
            org_id=org_id,
            target_type="app",
            target_id=str(app_id),
            detail={
                "name": data.name,
                "project": project,
                "environment": environment,
                "git_credentials": creds is not None,
            },
        )
        click.secho(
            f"created app {project}/{environment}/{data.name} (id {app_id}), "
            f"served on host port {port} once deployed",
            fg="green",
        )

    run(work)


@app_group.command("show")
@ORG_OPTION
@click.argument("app")
def show(org_slug: str, app: str) -> None:
    """An app's settings (never its credentials). APP: id or project/environment/name."""
    from gakwaya.deploy import apps
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            row = apps.get_app_row(db, org.id, apps.find_app(db, org.id, app).id)
        for line in _describe(row):
            click.echo(line)

    run(work)


@app_group.command("update")
@ORG_OPTION
@click.argument("app")
@click.option("--name", default=None, help="Rename the app.")
@_source_options
@click.option("--no-cpu-limit", is_flag=True, help="Remove the CPU limit.")
@click.option("--no-memory-limit", is_flag=True, help="Remove the memory limit.")
@click.option("--remove-git-credentials", is_flag=True, help="Forget the deploy key or token.")
def update(org_slug: str, app: str, **values: Any) -> None:
    """Change the settings given; the next deployment uses them."""
    from gakwaya.deploy import apps
    from gakwaya.deploy.events import AppUpdated
    from gakwaya.deploy.schemas import AppUpdate
    from gakwaya.orgs import services as orgs

    creds = _credentials(
        values.pop("ssh_key_file"), values.pop("https_token_stdin"), values.pop("https_username")
    )
    health = _health(values)
    given: dict[str, Any] = {
        k: v
        for k, v in values.items()
        if v is not None and k not in ("no_cpu_limit", "no_memory_limit", "remove_git_credentials")
    }
    if values["no_cpu_limit"]:
        given["cpu"] = None
    if values["no_memory_limit"]:
        given["memory_mb"] = None
    if values["remove_git_credentials"]:
        if creds is not None:
            fail("--remove-git-credentials: not with new credentials", code=2)
        given["git_credentials"] = None
    elif creds is not None:
        given["git_credentials"] = creds
    if health:
        given["health"] = health
    data = validated(AppUpdate, OPTIONS | {"name": "--name"}, **given)

    def work(kernel: Any) -> None:
        with field_errors(OPTIONS | {"name": "--name"}), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            app_id = apps.find_app(db, org.id, app).id
            _row, changed = apps.update_app(db, kernel, org_id=org.id, app_id=app_id, data=data)
            org_id = org.id
        if not changed:
            click.echo("nothing to change")
            return
        publish(kernel, [AppUpdated(org_id=org_id, app_id=app_id, fields=changed)])
        audit(
            kernel,
            "app update",
            "apps_update",
            org_id=org_id,
            target_type="app",
            target_id=str(app_id),
            detail={"fields": changed},
        )
        click.secho(f"updated app {app_id}: {', '.join(changed)}", fg="green")

    run(work)


@app_group.command("delete")
@ORG_OPTION
@click.argument("app")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(org_slug: str, app: str, yes: bool) -> None:
    """Delete an app: its variables, releases and deployments, and (through a job) its
    containers and images."""
    from gakwaya.deploy import apps
    from gakwaya.deploy.events import AppDeleted
    from gakwaya.orgs import services as orgs

    if not yes:
        click.confirm(f"Delete app {app} and everything it runs?", abort=True)

    def work(kernel: Any) -> None:
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            app_id = apps.find_app(db, org.id, app).id
            name = apps.delete_app(db, org_id=org.id, app_id=app_id).name
            org_id = org.id
        publish(kernel, [AppDeleted(org_id=org_id, app_id=app_id, name=name)])
        job_id = apps.enqueue_teardown(kernel, app_id=app_id, org_id=org_id, created_by=ACTOR)
        audit(
            kernel,
            "app delete",
            "apps_delete",
            org_id=org_id,
            target_type="app",
            target_id=str(app_id),
            detail={"name": name, "teardown_job": job_id},
        )
        click.secho(f"deleted app {app_id} ({name}); teardown job {job_id}", fg="green")

    run(work)


# Environment variables -------------------------------------------------------------------


@app_group.group("env")
def env_group() -> None:
    """Manage an app's environment variables (secret values are never shown)."""


@env_group.command("list")
@ORG_OPTION
@click.argument("app")
def env_list(org_slug: str, app: str) -> None:
    """The app's variables; a secret one shows as ******."""
    from gakwaya.deploy import apps, envvars
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            rows = envvars.list_vars(kernel.box, db, apps.find_app(db, org.id, app))
        if not rows:
            click.echo("no variables")
        for row in rows:
            click.echo(f"{row.key}={'******' if row.secret else row.value}")

    run(work)


def _parse_assignments(assignments: tuple[str, ...], secret: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    from_stdin = [a for a in assignments if "=" not in a]
    if len(from_stdin) > 1:
        fail(f"KEY: only one variable can read its value from standard input, not {from_stdin}", 2)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            value = _read_secret(f"value of {key}")
        changes[key] = {"value": value, "secret": True} if secret else {"value": value}
    return changes


@env_group.command("set")
@ORG_OPTION
@click.argument("app")
@click.argument("assignments", metavar="KEY=VALUE|KEY...", nargs=-1, required=True)
@click.option("--secret", is_flag=True, help="Never show these values again.")
@click.option("--redeploy", is_flag=True, help="Queue a deployment with the new variables.")
def env_set(
    org_slug: str, app: str, assignments: tuple[str, ...], secret: bool, redeploy: bool
) -> None:
    """Set variables, all or nothing. A bare KEY reads its value from standard input
    (or a hidden prompt), so the value stays out of your shell history.

    \b
    Examples:
      gakwaya app env set --org acme shop/production/web DEBUG=0 WORKERS=4
      gakwaya app env set --org acme 12 --secret DATABASE_URL < database-url.txt
    """
    from gakwaya.deploy import apps, envvars
    from gakwaya.deploy.events import AppEnvChanged
    from gakwaya.deploy.schemas import EnvSet
    from gakwaya.orgs import services as orgs

    data = validated(EnvSet, {}, vars=_parse_assignments(assignments, secret), redeploy=redeploy)

    def work(kernel: Any) -> None:
        with field_errors({"vars.*": "KEY {}"}), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            row = apps.find_app(db, org.id, app)
            changed = envvars.set_vars(kernel.box, db, row, data.vars)
            deployment_id = (
                envvars.redeploy(db, kernel, row, created_by=ACTOR) if redeploy else None
            )
            app_id, org_id = row.id, org.id
        if changed:
            publish(kernel, [AppEnvChanged(org_id=org_id, app_id=app_id, keys=changed)])
        audit(
            kernel,
            "app env set",
            "env_set",
            org_id=org_id,
            target_type="app",
            target_id=str(app_id),
            detail={"keys": changed, "redeploy": redeploy, "deployment_id": deployment_id},
        )
        click.secho(f"set {', '.join(changed) or 'nothing'} on app {app_id}", fg="green")
        if deployment_id is not None:
            click.echo(f"queued deployment {deployment_id}")

    run(work)


@env_group.command("unset")
@ORG_OPTION
@click.argument("app")
@click.argument("keys", metavar="KEY...", nargs=-1, required=True)
@click.option("--redeploy", is_flag=True, help="Queue a deployment without them.")
def env_unset(org_slug: str, app: str, keys: tuple[str, ...], redeploy: bool) -> None:
    """Unset variables; an unknown KEY is an error and nothing is unset."""
    from gakwaya.deploy import apps, envvars
    from gakwaya.deploy.events import AppEnvChanged
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            row = apps.find_app(db, org.id, app)
            for key in keys:
                envvars.unset_var(db, row, key)
            deployment_id = (
                envvars.redeploy(db, kernel, row, created_by=ACTOR) if redeploy else None
            )
            app_id, org_id = row.id, org.id
        publish(kernel, [AppEnvChanged(org_id=org_id, app_id=app_id, keys=sorted(set(keys)))])
        audit(
            kernel,
            "app env unset",
            "env_unset",
            org_id=org_id,
            target_type="app",
            target_id=str(app_id),
            detail={
                "keys": sorted(set(keys)),
                "redeploy": redeploy,
                "deployment_id": deployment_id,
            },
        )
        click.secho(f"unset {', '.join(keys)} on app {app_id}", fg="green")
        if deployment_id is not None:
            click.echo(f"queued deployment {deployment_id}")

    run(work)
