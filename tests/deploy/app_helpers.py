"""Helpers shared by the project, app and variable tests (API and CLI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gakwaya.db.models import App, AppEnvVar, AuditRecord, Environment, Job, Project, StoredEvent
from gakwaya.kernel import Kernel

API = "/api/v1/orgs/acme"
OTHER = "/api/v1/orgs/globex"

SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWZkZWFkYmVlZgAAAJgAAAAAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def counts(kernel: Kernel) -> dict[str, int]:
    """Rows of every table these endpoints write, to show a refused request wrote nothing."""
    with kernel.db.session() as db:
        return {
            m.__tablename__: int(db.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Project, Environment, App, AppEnvVar)
        }


def create_project(client: Any, headers: dict[str, str], name: str = "shop", **extra: Any) -> Any:
    r = client.post(f"{API}/projects", json={"name": name, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def app_body(name: str = "web", **extra: Any) -> dict[str, Any]:
    return {
        "project": "shop",
        "environment": "production",
        "name": name,
        "git_url": "https://git.example.com/acme/web.git",
        **extra,
    }


def create_app(client: Any, headers: dict[str, str], name: str = "web", **extra: Any) -> Any:
    r = client.post(f"{API}/apps", json=app_body(name, **extra), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def assert_invalid(response: Any, field: str, rule_part: str = "") -> None:
    """A 422 whose problem names ``field`` and quotes (part of) the rule."""
    assert response.status_code == 422, response.text
    body = response.json()
    names = fields(response)
    assert field in names, (field, names, body)
    if rule_part:
        rules = " ".join(e["rule"] for e in body["errors"])
        assert rule_part in rules, (rule_part, rules)


def stored_text(kernel: Kernel) -> str:
    """Everything a secret must never appear in: audit rows, events, job arguments,
    and the app and variable rows themselves."""
    with kernel.db.session() as db:
        parts: list[str] = []
        for r in db.scalars(select(AuditRecord)).all():
            parts.append(f"{r.action} {r.target_type} {r.target_id} {r.detail}")
        parts += [str(r.payload) for r in db.scalars(select(StoredEvent)).all()]
        parts += [f"{r.arguments} {r.result} {r.error}" for r in db.scalars(select(Job)).all()]
        for a in db.scalars(select(App)).all():
            parts.append(" ".join(str(v) for v in vars(a).values()))
        for v in db.scalars(select(AppEnvVar)).all():
            parts.append(f"{v.key} {v.ciphertext}")
        return "\n".join(parts)
