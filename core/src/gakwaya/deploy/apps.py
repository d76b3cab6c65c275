"""Apps: their source, limits, health check and git credentials; the rules shared by
the API and the CLI.

Every value that later reaches git, a path inside a checkout or Docker is checked
here with :mod:`gakwaya_sdk.sources` before anything is written, so a bad one is a
422 naming the field and the rule, and the pipeline only ever sees values that
passed. Git credentials are stored encrypted (``kernel.box``) and never returned.

Each app gets a host port from ``app_port_range`` at creation and keeps it for
life: the port proxy serves the app there, so its address survives redeploys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Environment, Project
from gakwaya.deploy import keys
from gakwaya.deploy.projects import get_environment
from gakwaya.deploy.schemas import (
    AppCreate,
    AppUpdate,
    AppView,
    GitCredentials,
    HealthCheck,
)
from gakwaya.errors import FieldError, NotFound, ServiceUnavailable
from gakwaya.orgs.scoped import get_in_org, in_org
from gakwaya.orgs.services import FieldConflict
from gakwaya.pagination import next_cursor
from gakwaya_sdk.sources import (
    GIT_REF_RULE,
    GIT_URL_RULE,
    IMAGE_REF_RULE,
    RELATIVE_PATH_RULE,
    RuleError,
    check_git_ref,
    check_git_url,
    check_image_ref,
    check_relative_path,
    git_url_kind,
)

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel
    from gakwaya.security.crypto import SecretBox
    from gakwaya.settings import Settings

#: The job the pipeline registers to stop and remove what a deleted app ran.
TEARDOWN_JOB = "apps.teardown"
#: The user name sent with an HTTPS token when none is given (GitHub's convention;
#: GitLab and Gitea accept any name with a personal access token).
DEFAULT_HTTPS_USERNAME = "x-access-token"

SSH_KEY_RULE = (
    "an unencrypted private key in OpenSSH or PEM format: a '-----BEGIN … PRIVATE KEY-----' "
    "line, base64 lines, a matching '-----END … PRIVATE KEY-----' line; at most 16384 characters"
)
HTTPS_TOKEN_RULE = "1 to 1024 printable ASCII characters, no spaces"  # noqa: S105
HTTPS_USERNAME_RULE = "1 to 256 letters, digits and . _ @ + -"
CREDENTIALS_RULE = (
    "either {'ssh_private_key': …} (for an ssh:// or user@host:path URL) or "
    "{'https_token': …, 'https_username': …} (for an https:// URL), for a git source"
)
_SSH_KEY = re.compile(
    r"\A-----BEGIN (?P<kind>(?:OPENSSH |RSA |EC |DSA )?)PRIVATE KEY-----\n"
    r"(?:[A-Za-z0-9+/=]{1,100}\n){1,400}"
    r"-----END (?P=kind)PRIVATE KEY-----\n\Z"
)
_TOKEN = re.compile(r"\A[\x21-\x7e]{1,1024}\Z")
_USERNAME = re.compile(r"\A[A-Za-z0-9._@+-]{1,256}\Z")


@dataclass
class AppRow:
    """An app with the names of its project and environment, as views need them."""

    app: App
    project: str
    environment: str
    project_id: int


# Checks ---------------------------------------------------------------------------------


def _rule(field: str, check: Any, value: str, rule: str) -> None:
    try:
        check(value)
    except RuleError:
        raise FieldError(field, rule) from None


def check_source(
    *,
    source_type: str,
    git_url: str,
    git_ref: str,
    subdirectory: str,
    dockerfile: str,
    image: str,
) -> None:
    """Every source field against its rule; the one a source type needs must be set."""
    if source_type == "git" and not git_url:
        raise FieldError("git_url", f"required for a git source: {GIT_URL_RULE}")
    if source_type == "image" and not image:
        raise FieldError("image", f"required for an image source: {IMAGE_REF_RULE}")
    if git_url:
        _rule("git_url", check_git_url, git_url, GIT_URL_RULE)
    _rule("git_ref", check_git_ref, git_ref, GIT_REF_RULE)
    if subdirectory:
        _rule("subdirectory", check_relative_path, subdirectory, f"empty or {RELATIVE_PATH_RULE}")
    _rule("dockerfile", check_relative_path, dockerfile, RELATIVE_PATH_RULE)
    if image:
        _rule("image", check_image_ref, image, IMAGE_REF_RULE)


def check_replicas(settings: Settings, replicas: int) -> None:
    if not 0 <= replicas <= settings.app_max_replicas:
        raise FieldError("replicas", f"0 to {settings.app_max_replicas} (app_max_replicas)")


def credentials_payload(creds: GitCredentials, git_url: str) -> dict[str, str]:
    """The stored form of ``creds``, after checking their shape and that they suit the
    URL's transport (a key is useless for https://, a token for ssh)."""
    ssh, token, user = creds.ssh_private_key, creds.https_token, creds.https_username
    if (ssh is None) == (token is None) or (ssh is not None and user is not None):
        raise FieldError("git_credentials", CREDENTIALS_RULE)
    if ssh is not None:
        text = ssh.replace("\r\n", "\n").strip() + "\n"
        if len(text) > 16384 or not _SSH_KEY.match(text):
            raise FieldError("git_credentials.ssh_private_key", SSH_KEY_RULE)
        payload = {"ssh_private_key": text}
    else:
        assert token is not None
        if not _TOKEN.match(token):
            raise FieldError("git_credentials.https_token", HTTPS_TOKEN_RULE)
        if user is not None and not _USERNAME.match(user):
            raise FieldError("git_credentials.https_username", HTTPS_USERNAME_RULE)
        payload = {"https_token": token, "https_username": user or DEFAULT_HTTPS_USERNAME}
    _check_credentials_fit(payload, git_url)
    return payload


def _check_credentials_fit(payload: dict[str, str], git_url: str) -> None:
    if not git_url:
        raise FieldError("git_credentials", f"set git_url too: {CREDENTIALS_RULE}")
    wanted = "ssh" if "ssh_private_key" in payload else "https"
    if git_url_kind(git_url) != wanted:
        raise FieldError("git_credentials", f"do not suit git_url: {CREDENTIALS_RULE}")


def app_git_credentials(box: SecretBox, app: App) -> dict[str, str]:
    """The app's git credentials, decrypted: ``{"ssh_private_key"}`` or
    ``{"https_token", "https_username"}``; empty when it has none."""
    if not app.git_credentials:
        return {}
    raw = json.loads(box.decrypt(app.git_credentials))
    return {str(k): str(v) for k, v in raw.items()}


# Host ports -----------------------------------------------------------------------------


def free_port(db: Session, settings: Settings, exclude: set[int] | None = None) -> int:
    """The lowest port of ``app_port_range`` no app holds (nor ``exclude``)."""
    low, high = settings.app_ports
    taken = set(db.scalars(select(App.host_port).where(App.host_port.between(low, high))).all()) | (
        exclude or set()
    )
    for port in range(low, high + 1):
        if port not in taken:
            return port
    raise ServiceUnavailable(
        f"every host port of app_port_range ({low}-{high}) is taken; the operator can "
        "widen the range, or delete an app"
    )


# Reading --------------------------------------------------------------------------------


def _rows_query(org_id: int) -> Any:
    return (
        in_org(App, org_id)
        .add_columns(Project.name, Environment.name, Project.id)
        .join(Environment, Environment.id == App.environment_id)
        .join(Project, Project.id == Environment.project_id)
    )


def get_app(db: Session, org_id: int, app_id: int, *, for_update: bool = False) -> App:
    return get_in_org(db, App, app_id, org_id, what="app", for_update=for_update)


def get_app_row(db: Session, org_id: int, app_id: int) -> AppRow:
    row = db.execute(_rows_query(org_id).where(App.id == app_id)).first()
    if row is None:
        raise NotFound(f"app {app_id} not found in this organization")
    return AppRow(row[0], row[1], row[2], row[3])


def list_apps(
    db: Session,
    org_id: int,
    *,
    project: str | None = None,
    environment: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[AppRow], str | None]:
    """Apps of the org, newest first; ``project`` and ``environment`` filter by name."""
    query = _rows_query(org_id)
    if project is not None:
        query = query.where(Project.name == project)
    if environment is not None:
        query = query.where(Environment.name == environment)
    if cursor is not None:
        query = query.where(App.id < cursor)
    rows = db.execute(query.order_by(App.id.desc()).limit(limit + 1)).all()
    return (
        [AppRow(r[0], r[1], r[2], r[3]) for r in rows[:limit]],
        next_cursor([r[0].id for r in rows], limit),
    )


def app_view(row: AppRow, installation: str) -> AppView:
    """The API view; ``installation`` is ``kernel.installation_id`` (part of the key)."""
    app = row.app
    return AppView(
        id=app.id,
        name=app.name,
        project=row.project,
        environment=row.environment,
        project_id=row.project_id,
        environment_id=app.environment_id,
        key=keys.app_key(installation, app.id),
        source_type=app.source_type,
        git_url=app.git_url,
        git_ref=app.git_ref,
        subdirectory=app.subdirectory,
        dockerfile=app.dockerfile,
        image=app.image,
        has_git_credentials=bool(app.git_credentials),
        port=app.port,
        replicas=app.replicas,
        cpu=app.cpu,
        memory_mb=app.memory_mb,
        health=HealthCheck(
            kind=app.health_kind,
            path=app.health_path,
            interval=app.health_interval,
            timeout=app.health_timeout,
            retries=app.health_retries,
        ),
        restart_policy=app.restart_policy,
        desired_state=app.desired_state,
        current_release_id=app.current_release_id,
        host_port=app.host_port,
        created_at=app.created_at,
        updated_at=app.updated_at,
    )


# Writing --------------------------------------------------------------------------------


def _name_taken(db: Session, environment_id: int, name: str, but: int | None = None) -> bool:
    query = select(App.id).where(App.environment_id == environment_id, App.name == name)
    if but is not None:
        query = query.where(App.id != but)
    return db.scalar(query) is not None


def _taken(project: str, environment: str, name: str) -> FieldConflict:
    return FieldConflict(
        "name",
        f"environment {project}/{environment} already has an app named {name!r}; "
        "choose another name",
    )


def create_app(db: Session, kernel: Kernel, *, org_id: int, data: AppCreate) -> tuple[App, AppRow]:
    """Create an app with a free host port; nothing is written when a value is bad."""
    env = get_environment(db, org_id, data.project, data.environment)
    check_source(
        source_type=data.source_type,
        git_url=data.git_url,
        git_ref=data.git_ref,
        subdirectory=data.subdirectory,
        dockerfile=data.dockerfile,
        image=data.image,
    )
    check_replicas(kernel.settings, data.replicas)
    creds = None
    if data.git_credentials is not None:
        creds = kernel.box.encrypt(
            json.dumps(credentials_payload(data.git_credentials, data.git_url))
        )
    if _name_taken(db, env.id, data.name):
        raise _taken(data.project, data.environment, data.name)
    tried: set[int] = set()
    for _attempt in range(20):
        port = free_port(db, kernel.settings, tried)
        now = utcnow()
        app = App(
            org_id=org_id,
            environment_id=env.id,
            name=data.name,
            source_type=data.source_type,
            git_url=data.git_url,
            git_ref=data.git_ref,
            subdirectory=data.subdirectory,
            dockerfile=data.dockerfile,
            image=data.image,
            git_credentials=creds,
            port=data.port,
            replicas=data.replicas,
            cpu=data.cpu,
            memory_mb=data.memory_mb,
            health_kind=data.health.kind,
            health_path=data.health.path,
            health_interval=data.health.interval,
            health_timeout=data.health.timeout,
            health_retries=data.health.retries,
            restart_policy=data.restart_policy,
            desired_state="running",
            host_port=port,
            created_at=now,
            updated_at=now,
        )
        db.add(app)
        try:
            with db.begin_nested():
                db.flush()
        except IntegrityError:
            # Another app took the name or the port a moment ago (PostgreSQL; SQLite
            # serialises writers): a name is a 409, a port is tried again.
            if _name_taken(db, env.id, data.name):
                raise _taken(data.project, data.environment, data.name) from None
            tried.add(port)
            continue
        return app, AppRow(app, data.project, data.environment, env.project_id)
    raise ServiceUnavailable("could not reserve a host port for the app; try again")


def update_app(
    db: Session, kernel: Kernel, *, org_id: int, app_id: int, data: AppUpdate
) -> tuple[App, list[str]]:
    """Apply the fields present in ``data``; return the app and the names of the
    fields that changed. Nothing is written when a value is bad."""
    app = get_app(db, org_id, app_id, for_update=True)
    values = {
        f: v
        for f in data.__struct_fields__
        if (v := getattr(data, f)) is not msgspec.UNSET and f not in ("health", "git_credentials")
    }
    merged = {
        f: values.get(f, getattr(app, f))
        for f in ("source_type", "git_url", "git_ref", "subdirectory", "dockerfile", "image")
    }
    check_source(**merged)
    if "replicas" in values:
        check_replicas(kernel.settings, values["replicas"])
    if "name" in values and _name_taken(db, app.environment_id, values["name"], but=app.id):
        env = db.get(Environment, app.environment_id)
        assert env is not None
        project = db.get(Project, env.project_id)
        assert project is not None
        raise _taken(project.name, env.name, values["name"])
    creds_change: str | msgspec.UnsetType | None = msgspec.UNSET
    if isinstance(data.git_credentials, GitCredentials):
        payload = credentials_payload(data.git_credentials, merged["git_url"])
        creds_change = kernel.box.encrypt(json.dumps(payload))
    elif data.git_credentials is None:
        creds_change = None
    elif app.git_credentials and "git_url" in values:
        # Kept credentials must still suit the new URL.
        _check_credentials_fit(app_git_credentials(kernel.box, app), merged["git_url"])
    changed: list[str] = []
    for field, value in values.items():
        if getattr(app, field) != value:
            setattr(app, field, value)
            changed.append(field)
    if data.health is not msgspec.UNSET:
        for part in data.health.__struct_fields__:
            value = getattr(data.health, part)
            if value is not msgspec.UNSET and getattr(app, f"health_{part}") != value:
                setattr(app, f"health_{part}", value)
                changed.append(f"health.{part}")
    if creds_change is not msgspec.UNSET:
        app.git_credentials = creds_change
        changed.append("git_credentials")
    if changed:
        app.updated_at = utcnow()
        try:
            with db.begin_nested():
                db.flush()
        except IntegrityError:
            raise FieldConflict("name", "another app of this environment has that name") from None
    return app, changed


def delete_app(db: Session, *, org_id: int, app_id: int) -> App:
    """Delete the app's row; its variables, releases and deployments go with it. The
    caller commits, then calls :func:`enqueue_teardown` to remove what it ran."""
    app = get_app(db, org_id, app_id, for_update=True)
    db.delete(app)
    db.flush()
    return app


def enqueue_teardown(kernel: Kernel, *, app_id: int, org_id: int, created_by: str) -> str:
    """Queue the removal of a deleted app's containers, images and routes."""
    job = kernel.jobs.enqueue(
        TEARDOWN_JOB,
        org_id=org_id,
        arguments={"app_id": app_id, "org_id": org_id},
        created_by=created_by,
    )
    return str(job.id)


def find_app(db: Session, org_id: int, ref: str) -> App:
    """An app by id (``12``) or by ``project/environment/name``, for the CLI."""
    if ref.isdigit():
        return get_app(db, org_id, int(ref))
    parts = ref.split("/")
    if len(parts) != 3:
        raise NotFound(f"app {ref} not found: give its id or project/environment/name")
    app = db.scalars(
        in_org(App, org_id)
        .join(Environment, Environment.id == App.environment_id)
        .join(Project, Project.id == Environment.project_id)
        .where(Project.name == parts[0], Environment.name == parts[1], App.name == parts[2])
    ).first()
    if app is None:
        raise NotFound(f"app {ref} not found in this organization")
    return app
