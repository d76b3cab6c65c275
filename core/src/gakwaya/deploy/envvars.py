"""Environment variables of apps: always encrypted at rest, secret ones never shown.

A change is all or nothing: every key and value of a request is checked before the
first row is written, so one bad variable leaves the app's variables as they were.
Nothing here puts a value in an exception, an event or an audit detail; only keys
travel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, AppEnvVar
from gakwaya.deploy.schemas import EnvVarSet
from gakwaya.errors import FieldError, NotFound
from gakwaya_sdk.sources import (
    ENV_KEY_RULE,
    ENV_VALUE_RULE,
    RuleError,
    check_env_key,
    check_env_value,
)

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel
    from gakwaya.security.crypto import SecretBox

#: The most variables one app may have.
MAX_VARS = 500


@dataclass
class EnvVarRow:
    key: str
    secret: bool
    #: None for a secret variable: its value never leaves this module through a view.
    value: str | None
    updated_at: dt.datetime


def app_env(box: SecretBox, db: Session, app: App) -> dict[str, tuple[str, bool]]:
    """Every variable of ``app``, decrypted: key → (value, secret). For the pipeline."""
    rows = db.scalars(select(AppEnvVar).where(AppEnvVar.app_id == app.id))
    return {row.key: (box.decrypt(row.ciphertext), bool(row.secret)) for row in rows}


def list_vars(box: SecretBox, db: Session, app: App) -> list[EnvVarRow]:
    """The app's variables sorted by key; secret values are not even decrypted."""
    rows = db.scalars(
        select(AppEnvVar).where(AppEnvVar.app_id == app.id).order_by(AppEnvVar.key)
    ).all()
    return [
        EnvVarRow(
            key=row.key,
            secret=bool(row.secret),
            value=None if row.secret else box.decrypt(row.ciphertext),
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def check_changes(changes: dict[str, EnvVarSet | None]) -> None:
    """Every key and value against its rule; the first bad one is a 422 naming
    ``vars.<KEY>`` (never the value)."""
    if len(changes) > MAX_VARS:
        raise FieldError("vars", f"at most {MAX_VARS} variables per request")
    for key, change in changes.items():
        try:
            check_env_key(key)
        except RuleError:
            raise FieldError(f"vars.{key}", ENV_KEY_RULE) from None
        if change is not None:
            try:
                check_env_value(change.value)
            except RuleError:
                raise FieldError(f"vars.{key}", ENV_VALUE_RULE) from None


def set_vars(
    box: SecretBox, db: Session, app: App, changes: dict[str, EnvVarSet | None]
) -> list[str]:
    """Set (a value) or unset (None) variables; return the keys that changed, sorted.

    A variable set without ``secret`` keeps its flag (a new one is not secret)."""
    check_changes(changes)
    existing = {
        row.key: row
        for row in db.scalars(
            select(AppEnvVar).where(AppEnvVar.app_id == app.id, AppEnvVar.key.in_(list(changes)))
        )
    }
    now = utcnow()
    changed: list[str] = []
    for key, change in sorted(changes.items()):
        row = existing.get(key)
        if change is None:
            if row is not None:
                db.delete(row)
                changed.append(key)
            continue
        secret = change.secret if change.secret is not None else bool(row and row.secret)
        if row is None:
            db.add(
                AppEnvVar(
                    org_id=app.org_id,
                    app_id=app.id,
                    key=key,
                    ciphertext=box.encrypt(change.value),
                    secret=secret,
                    updated_at=now,
                )
            )
        else:
            row.ciphertext = box.encrypt(change.value)
            row.secret = secret
            row.updated_at = now
        changed.append(key)
    db.flush()
    count = db.scalar(select(func.count()).select_from(AppEnvVar).where(AppEnvVar.app_id == app.id))
    if (count or 0) > MAX_VARS:
        raise FieldError("vars", f"an app has at most {MAX_VARS} variables; unset some first")
    return changed


def unset_var(db: Session, app: App, key: str) -> None:
    row = db.scalars(
        select(AppEnvVar).where(AppEnvVar.app_id == app.id, AppEnvVar.key == key)
    ).first()
    if row is None:
        raise NotFound(f"variable {key} not found in app {app.id}")
    db.delete(row)
    db.flush()


def redeploy(db: Session, kernel: Kernel, app: App, *, created_by: str) -> int:
    """Queue a deployment with the new variables, in the caller's transaction (the
    job is enqueued once it commits); return the deployment's id."""
    from gakwaya.deploy.queue import request_deploy

    deployment = request_deploy(db, kernel, app, trigger="env", created_by=created_by)
    return int(deployment.id)
