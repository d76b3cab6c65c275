"""The permission matrix, generated from the OpenAPI schema.

For every operation under ``/api/`` the schema publishes:
- unauthenticated → 401 (unless the route is public);
- a member of another organization → 404 (routes under ``/orgs/{org}``);
- a read-only API key on a mutating route → 403;
- a role one step below the permission's minimum → 403, and an API key whose
  scopes fall short of the permission's scope → 403;
- the allowed role succeeds: ``CASES`` holds one real, successful call per
  operationId, and a new route without an entry fails ``test_every_operation_has_a_case``.

A route cannot skip this: the list of operations comes from the running app's schema.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from litestar.routes import HTTPRoute
from sqlalchemy import select

from gakwaya.db.models import Invitation, Job, UserSession
from gakwaya_sdk.permissions import ROLE_RANK, Scope
from tests.conftest import PASSWORD, World, make_session, make_user
from tests.identity.helpers import unused_code

# A few routes (app status, logs, stats) ask the Docker engine what runs: start it when
# this module runs alone on a fresh machine.
pytestmark = pytest.mark.usefixtures("docker_engine")

SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Operation:
    op_id: str
    method: str
    path: str  # Litestar form, with {name:type}
    opt: dict[str, Any]

    @property
    def in_org(self) -> bool:
        return "{org:str}" in self.path

    @property
    def public(self) -> bool:
        return bool(self.opt.get("public"))


def operations(app: Any) -> list[Operation]:
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        for handler in route.route_handlers:
            if handler.operation_id is None:
                continue  # Litestar's automatic OPTIONS
            for method in handler.http_methods:
                out.append(
                    Operation(handler.operation_id, method, route.path, dict(handler.opt or {}))
                )
    return sorted(out, key=lambda o: o.op_id)


def fill(path: str, org: str = "acme", **values: Any) -> str:
    def sub(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2)
        if name == "org":
            return org
        if name in values:
            return str(values[name])
        return "1" if kind == "int" else uuid.uuid4().hex

    return re.sub(r"\{(\w+):(\w+)\}", sub, path)


def call(client: Any, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
    return client.request(method, url, headers=headers, **kw)


# The schema and the app agree ---------------------------------------------------------


def test_schema_lists_every_api_route(app: Any, client: Any) -> None:
    schema = client.get("/schema/openapi.json").json()
    in_schema = {
        op["operationId"]
        for path, item in schema["paths"].items()
        if path.startswith("/api/")
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert in_schema == {o.op_id for o in operations(app)}


# Generic rows --------------------------------------------------------------------------


def test_unauthenticated_is_401(app: Any, client: Any, world: World) -> None:
    checked = 0
    for op in operations(app):
        if op.public:
            continue
        r = call(client, op.method, fill(op.path), {}, json={})
        assert r.status_code == 401, (op.op_id, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        checked += 1
    assert checked > 20


def test_member_of_another_org_gets_404(app: Any, client: Any, world: World) -> None:
    outsider_session = world.b.sessions["owner"]
    outsider_key = world.b.keys["admin"]
    for op in operations(app):
        if not op.in_org:
            continue
        for headers in (outsider_session, outsider_key):
            r = call(client, op.method, fill(op.path), headers, json={})
            assert r.status_code == 404, (op.op_id, r.status_code, r.text)
            assert "Acme" not in r.text  # nothing about the other org leaks


def test_read_only_key_cannot_mutate(app: Any, client: Any, world: World) -> None:
    checked = 0
    for op in operations(app):
        if op.method in SAFE or op.public:
            continue
        r = call(client, op.method, fill(op.path), world.a.keys["read"], json={})
        assert r.status_code == 403, (op.op_id, r.status_code, r.text)
        checked += 1
    assert checked > 15


def test_role_below_the_permission_is_403(app: Any, client: Any, world: World, kernel: Any) -> None:
    by_rank = {rank: role for role, rank in ROLE_RANK.items()}
    checked = 0
    for op in operations(app):
        if not op.in_org:
            continue
        perm = kernel.permissions.get(op.opt["permission"])
        below = by_rank.get(perm.min_role.rank - 1)
        if below is None:
            continue
        r = call(client, op.method, fill(op.path), world.a.sessions[below.value], json={})
        assert r.status_code == 403, (op.op_id, below, r.status_code, r.text)
        assert perm.min_role.value in r.json()["detail"]
        checked += 1
    assert checked >= 5


def test_key_scope_below_the_permission_is_403(
    app: Any, client: Any, world: World, kernel: Any
) -> None:
    order = [Scope.READ, Scope.DEPLOY, Scope.WRITE, Scope.ADMIN]
    checked = 0
    for op in operations(app):
        if not op.in_org:
            continue
        perm = kernel.permissions.get(op.opt["permission"])
        index = order.index(perm.scope)
        if index == 0:
            continue
        short = order[index - 1]
        r = call(client, op.method, fill(op.path), world.a.keys[short.value], json={})
        assert r.status_code == 403, (op.op_id, short, r.status_code, r.text)
        checked += 1
    assert checked >= 5


# The allowed role succeeds: one real call per operation ----------------------------------


@dataclass
class Ctx:
    client: Any
    fresh: Callable[[], Any]
    kernel: Any
    world: World

    def s(self, role: str = "owner") -> dict[str, str]:
        return self.world.a.sessions[role]


def _enroll(ctx: Ctx, headers: dict[str, str], email: str) -> str:
    r = ctx.client.post("/api/v1/account/2fa/enroll", json={"password": PASSWORD}, headers=headers)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = ctx.client.post(
        "/api/v1/account/2fa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=headers
    )
    assert r.status_code == 200, r.text
    return str(secret)


def _invite(ctx: Ctx, email: str) -> str:
    r = ctx.client.post(
        "/api/v1/orgs/acme/invitations",
        json={"email": email, "role": "developer"},
        headers=ctx.s("admin"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _job(ctx: Ctx) -> str:
    job_id = uuid.uuid4().hex
    with ctx.kernel.db.transaction() as db:
        db.add(
            Job(
                id=job_id,
                org_id=ctx.world.a.org.id,
                type="core.prune",
                state="queued",
                arguments={},
                max_attempts=1,
            )
        )
    return job_id


def case_sessions_revoke(ctx: Ctx) -> Any:
    user = ctx.world.a.users["owner"]
    make_session(ctx.kernel, user)
    with ctx.kernel.db.session() as db:
        other = db.scalars(select(UserSession.id).where(UserSession.user_id == user.id)).all()
    r = ctx.client.get("/api/v1/account/sessions", headers=ctx.s())
    current = [s["id"] for s in r.json()["items"] if s["current"]]
    victim = next(i for i in other if i not in current)
    return ctx.client.delete(f"/api/v1/account/sessions/{victim}", headers=ctx.s())


def case_mfa(ctx: Ctx) -> Any:
    secret = _enroll(ctx, ctx.s("viewer"), "viewer@acme.example.com")
    fresh = ctx.fresh()
    r = fresh.post(
        "/api/v1/auth/login", json={"email": "viewer@acme.example.com", "password": PASSWORD}
    )
    assert r.json()["status"] == "mfa_required", r.text
    code = unused_code(ctx.kernel, "viewer@acme.example.com", secret)
    return fresh.post("/api/v1/auth/mfa", json={"code": code})


def case_2fa_disable(ctx: Ctx) -> Any:
    _enroll(ctx, ctx.s(), "owner@acme.example.com")
    return ctx.client.post(
        "/api/v1/account/2fa/disable", json={"password": PASSWORD}, headers=ctx.s()
    )


def case_recovery_codes(ctx: Ctx) -> Any:
    _enroll(ctx, ctx.s(), "owner@acme.example.com")
    return ctx.client.post(
        "/api/v1/account/2fa/recovery-codes", json={"password": PASSWORD}, headers=ctx.s()
    )


def case_2fa_confirm(ctx: Ctx) -> Any:
    r = ctx.client.post("/api/v1/account/2fa/enroll", json={"password": PASSWORD}, headers=ctx.s())
    code = pyotp.TOTP(r.json()["secret"]).now()
    return ctx.client.post("/api/v1/account/2fa/confirm", json={"code": code}, headers=ctx.s())


def case_invitation_accept(ctx: Ctx) -> Any:
    newcomer = make_user(ctx.kernel, "newcomer@example.com")
    token = _invite(ctx, "newcomer@example.com")
    return ctx.client.post(
        "/api/v1/invitations/accept",
        json={"token": token},
        headers=make_session(ctx.kernel, newcomer),
    )


def case_invitation_register(ctx: Ctx) -> Any:
    token = _invite(ctx, "fresh@example.com")
    return ctx.fresh().post(
        "/api/v1/invitations/register", json={"token": token, "password": "a brand new passphrase"}
    )


def case_invitation_preview(ctx: Ctx) -> Any:
    token = _invite(ctx, "curious@example.com")
    return ctx.fresh().post("/api/v1/invitations/preview", json={"token": token})


def case_invitation_revoke(ctx: Ctx) -> Any:
    _invite(ctx, "someone@example.com")
    with ctx.kernel.db.session() as db:
        inv = db.scalars(
            select(Invitation.id).where(Invitation.email == "someone@example.com")
        ).one()
    return ctx.client.delete(f"/api/v1/orgs/acme/invitations/{inv}", headers=ctx.s("admin"))


def case_key_revoke(ctx: Ctx) -> Any:
    r = ctx.client.post(
        "/api/v1/orgs/acme/api-keys",
        json={"name": "ci", "scopes": ["read"]},
        headers=ctx.s("developer"),
    )
    assert r.status_code == 201, r.text
    return ctx.client.delete(
        f"/api/v1/orgs/acme/api-keys/{r.json()['id']}", headers=ctx.s("developer")
    )


def case_job_show(ctx: Ctx) -> Any:
    return ctx.client.get(f"/api/v1/orgs/acme/jobs/{_job(ctx)}", headers=ctx.s("viewer"))


def case_job_cancel(ctx: Ctx) -> Any:
    return ctx.client.post(f"/api/v1/orgs/acme/jobs/{_job(ctx)}/cancel", headers=ctx.s("developer"))


def _superuser(ctx: Ctx) -> dict[str, str]:
    return make_session(ctx.kernel, make_user(ctx.kernel, superuser=True))


def _member(ctx: Ctx, role: str) -> int:
    return ctx.world.a.users[role].id


def _project(ctx: Ctx, name: str = "shop") -> str:
    r = ctx.client.post(
        "/api/v1/orgs/acme/projects", json={"name": name}, headers=ctx.s("developer")
    )
    assert r.status_code == 201, r.text
    return name


def _app(ctx: Ctx, **source: str) -> int:
    _project(ctx)
    r = ctx.client.post(
        "/api/v1/orgs/acme/apps",
        json={
            "project": "shop",
            "environment": "production",
            "name": "web",
            **(source or {"git_url": "https://git.example.com/acme/web.git"}),
        },
        headers=ctx.s("developer"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _app_with_var(ctx: Ctx) -> int:
    app_id = _app(ctx)
    r = ctx.client.patch(
        f"/api/v1/orgs/acme/apps/{app_id}/env",
        json={"vars": {"DEBUG": {"value": "1"}}},
        headers=ctx.s("developer"),
    )
    assert r.status_code == 200, r.text
    return app_id


def _image_app(ctx: Ctx) -> int:
    return _app(ctx, source_type="image", image="gakwaya-test/absent:1")


def _deployment(ctx: Ctx, state: str = "failed") -> int:
    from gakwaya.db.models import Deployment

    app_id = _image_app(ctx)
    with ctx.kernel.db.transaction() as db:
        row = Deployment(
            org_id=ctx.world.a.org.id, app_id=app_id, number=1, kind="image", state=state
        )
        db.add(row)
        db.flush()
        return int(row.id)


def _domain(ctx: Ctx) -> int:
    r = ctx.client.post(
        f"/api/v1/orgs/acme/apps/{_app(ctx)}/domains",
        json={"name": "shop.example.com"},
        headers=ctx.s("developer"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _release(ctx: Ctx) -> int:
    from gakwaya.db.models import Release
    from gakwaya.deploy.runtime import seal_env

    app_id = _image_app(ctx)
    with ctx.kernel.db.transaction() as db:
        row = Release(
            org_id=ctx.world.a.org.id,
            app_id=app_id,
            number=1,
            image="gakwaya-test/absent:1",
            image_id="gakwaya-test/absent:1",
            env_ciphertext=seal_env(ctx.kernel.box, {}),
        )
        db.add(row)
        db.flush()
        return int(row.id)


# operationId → a call that must succeed (2xx), or the test elsewhere that covers it.
CASES: dict[str, Callable[[Ctx], Any] | str] = {
    "account_show": lambda c: c.client.get("/api/v1/account", headers=c.s()),
    "account_update": lambda c: c.client.patch(
        "/api/v1/account", json={"name": "Ada"}, headers=c.s()
    ),
    "account_password_change": lambda c: c.client.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=c.s(),
    ),
    "account_email_change": lambda c: c.client.post(
        "/api/v1/account/email",
        json={"password": PASSWORD, "email": "new@acme.example.com"},
        headers=c.s(),
    ),
    "account_2fa_enroll": lambda c: c.client.post(
        "/api/v1/account/2fa/enroll", json={"password": PASSWORD}, headers=c.s()
    ),
    "account_2fa_confirm": case_2fa_confirm,
    "account_2fa_disable": case_2fa_disable,
    "account_recovery_codes_regenerate": case_recovery_codes,
    "account_sessions_list": lambda c: c.client.get("/api/v1/account/sessions", headers=c.s()),
    "account_sessions_revoke": case_sessions_revoke,
    "auth_login": lambda c: c.fresh().post(
        "/api/v1/auth/login", json={"email": "viewer@acme.example.com", "password": PASSWORD}
    ),
    "auth_mfa": case_mfa,
    "auth_logout": lambda c: c.client.post("/api/v1/auth/logout", headers=c.s("viewer")),
    "setup_complete": "tests/identity/test_setup.py",
    "orgs_create": lambda c: c.client.post(
        "/api/v1/orgs", json={"slug": "initech", "name": "Initech"}, headers=c.s("viewer")
    ),
    "orgs_list": lambda c: c.client.get("/api/v1/orgs", headers=c.world.a.keys["read"]),
    "orgs_show": lambda c: c.client.get("/api/v1/orgs/acme", headers=c.world.a.keys["read"]),
    "orgs_update": lambda c: c.client.patch(
        "/api/v1/orgs/acme", json={"name": "Acme Corp"}, headers=c.s("admin")
    ),
    "orgs_delete": lambda c: c.client.delete(
        "/api/v1/orgs/acme?confirm=acme", headers=c.s("owner")
    ),
    "orgs_leave": lambda c: c.client.post("/api/v1/orgs/acme/leave", headers=c.s("viewer")),
    "members_list": lambda c: c.client.get("/api/v1/orgs/acme/members", headers=c.s("viewer")),
    "members_update": lambda c: c.client.patch(
        f"/api/v1/orgs/acme/members/{_member(c, 'developer')}",
        json={"role": "viewer"},
        headers=c.s("admin"),
    ),
    "members_remove": lambda c: c.client.delete(
        f"/api/v1/orgs/acme/members/{_member(c, 'viewer')}", headers=c.s("admin")
    ),
    "invitations_create": lambda c: c.client.post(
        "/api/v1/orgs/acme/invitations",
        json={"email": "x@example.com", "role": "viewer"},
        headers=c.world.a.keys["admin"],
    ),
    "invitations_list": lambda c: c.client.get(
        "/api/v1/orgs/acme/invitations", headers=c.s("admin")
    ),
    "invitations_revoke": case_invitation_revoke,
    "invitations_accept": case_invitation_accept,
    "invitations_preview": case_invitation_preview,
    "invitations_register": case_invitation_register,
    "api_keys_create": lambda c: c.client.post(
        "/api/v1/orgs/acme/api-keys", json={"name": "ci", "scopes": ["read"]}, headers=c.s("viewer")
    ),
    "api_keys_list": lambda c: c.client.get(
        "/api/v1/orgs/acme/api-keys", headers=c.world.a.keys["read"]
    ),
    "api_keys_revoke": case_key_revoke,
    "audit_list": lambda c: c.client.get("/api/v1/orgs/acme/audit", headers=c.s("admin")),
    "events_list": lambda c: c.client.get(
        "/api/v1/orgs/acme/events", headers=c.world.a.keys["read"]
    ),
    "events_stream": "tests/events/test_stream.py",
    "jobs_list": lambda c: c.client.get("/api/v1/orgs/acme/jobs", headers=c.world.a.keys["read"]),
    "jobs_show": case_job_show,
    "jobs_cancel": case_job_cancel,
    "plugins_list": lambda c: c.client.get("/api/v1/plugins", headers=_superuser(c)),
    "plugins_enable": lambda c: c.client.post(
        "/api/v1/plugins/core.jobs/enable", headers=_superuser(c)
    ),
    "plugins_disable": "tests/plugins/test_api.py",
    # core.jobs declares no settings: an empty view, an empty update (the values
    # themselves: tests/plugins/test_settings.py).
    "plugin_settings_show": lambda c: c.client.get(
        "/api/v1/plugins/core.jobs/settings", headers=_superuser(c)
    ),
    "plugin_settings_update": lambda c: c.client.put(
        "/api/v1/plugins/core.jobs/settings", json={"values": {}}, headers=_superuser(c)
    ),
    "org_plugin_settings_list": lambda c: c.client.get(
        "/api/v1/orgs/acme/plugin-settings", headers=c.world.a.keys["read"]
    ),
    "org_plugin_settings_show": lambda c: c.client.get(
        "/api/v1/orgs/acme/plugins/core.jobs/settings", headers=c.world.a.keys["read"]
    ),
    "org_plugin_settings_update": lambda c: c.client.put(
        "/api/v1/orgs/acme/plugins/core.jobs/settings", json={"values": {}}, headers=c.s("admin")
    ),
    # These need a signed index served over HTTP and a throwaway Python environment.
    "marketplace_search": "tests/plugins/test_install_api.py",
    "marketplace_show": "tests/plugins/test_install_api.py",
    "plugins_install": "tests/plugins/test_install_api.py",
    "plugins_upgrade": "tests/plugins/test_install_api.py",
    "plugins_remove": "tests/plugins/test_install_api.py",
    "plugins_sync": "tests/plugins/test_install_api.py",
    # Projects, environments, apps and their variables (tests/deploy/ covers each in depth).
    "projects_list": lambda c: c.client.get(
        "/api/v1/orgs/acme/projects", headers=c.world.a.keys["read"]
    ),
    "projects_create": lambda c: c.client.post(
        "/api/v1/orgs/acme/projects", json={"name": "shop"}, headers=c.world.a.keys["write"]
    ),
    "projects_show": lambda c: c.client.get(
        f"/api/v1/orgs/acme/projects/{_project(c)}", headers=c.s("viewer")
    ),
    "projects_update": lambda c: c.client.patch(
        f"/api/v1/orgs/acme/projects/{_project(c)}",
        json={"description": "The shop"},
        headers=c.s("developer"),
    ),
    "projects_delete": lambda c: c.client.delete(
        f"/api/v1/orgs/acme/projects/{_project(c)}", headers=c.s("developer")
    ),
    "environments_list": lambda c: c.client.get(
        f"/api/v1/orgs/acme/projects/{_project(c)}/environments", headers=c.world.a.keys["read"]
    ),
    "environments_create": lambda c: c.client.post(
        f"/api/v1/orgs/acme/projects/{_project(c)}/environments",
        json={"name": "staging"},
        headers=c.s("developer"),
    ),
    "environments_show": lambda c: c.client.get(
        f"/api/v1/orgs/acme/projects/{_project(c)}/environments/production",
        headers=c.s("viewer"),
    ),
    "environments_delete": lambda c: c.client.delete(
        f"/api/v1/orgs/acme/projects/{_project(c)}/environments/production",
        headers=c.s("developer"),
    ),
    "apps_list": lambda c: c.client.get("/api/v1/orgs/acme/apps", headers=c.world.a.keys["read"]),
    "apps_create": lambda c: c.client.post(
        "/api/v1/orgs/acme/apps",
        json={
            "project": _project(c),
            "environment": "production",
            "name": "web",
            "source_type": "image",
            "image": "debian:12",
        },
        headers=c.world.a.keys["write"],
    ),
    "apps_show": lambda c: c.client.get(f"/api/v1/orgs/acme/apps/{_app(c)}", headers=c.s("viewer")),
    "apps_update": lambda c: c.client.patch(
        f"/api/v1/orgs/acme/apps/{_app(c)}", json={"replicas": 2}, headers=c.s("developer")
    ),
    "apps_delete": lambda c: c.client.delete(
        f"/api/v1/orgs/acme/apps/{_app(c)}", headers=c.s("admin")
    ),
    "env_list": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_app_with_var(c)}/env", headers=c.world.a.keys["read"]
    ),
    "env_set": lambda c: c.client.patch(
        f"/api/v1/orgs/acme/apps/{_app(c)}/env",
        json={"vars": {"DEBUG": {"value": "1"}, "API_TOKEN": {"value": "t0k", "secret": True}}},
        headers=c.s("developer"),
    ),
    "env_unset": lambda c: c.client.delete(
        f"/api/v1/orgs/acme/apps/{_app_with_var(c)}/env/DEBUG", headers=c.s("developer")
    ),
    # Deployments, releases, lifecycle: what needs a running release is covered against
    # the Docker engine in tests/deploy/test_pipeline_image.py.
    "deployments_create": lambda c: c.client.post(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/deployments", headers=c.world.a.keys["deploy"]
    ),
    "deployments_list": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/deployments", headers=c.world.a.keys["read"]
    ),
    "deployments_show": lambda c: c.client.get(
        f"/api/v1/orgs/acme/deployments/{_deployment(c)}", headers=c.s("viewer")
    ),
    "deployments_cancel": lambda c: c.client.post(
        f"/api/v1/orgs/acme/deployments/{_deployment(c, 'queued')}/cancel",
        headers=c.s("developer"),
    ),
    "deployments_logs": "tests/deploy/test_pipeline_image.py",
    "releases_list": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/releases", headers=c.world.a.keys["read"]
    ),
    "releases_show": lambda c: c.client.get(
        f"/api/v1/orgs/acme/releases/{_release(c)}", headers=c.s("viewer")
    ),
    "releases_rollback": lambda c: c.client.post(
        f"/api/v1/orgs/acme/releases/{_release(c)}/rollback", headers=c.world.a.keys["deploy"]
    ),
    "apps_status": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/status", headers=c.s("viewer")
    ),
    "apps_start": "tests/deploy/test_pipeline_image.py",
    "apps_stop": "tests/deploy/test_pipeline_image.py",
    "apps_restart": "tests/deploy/test_pipeline_image.py",
    "apps_scale": lambda c: c.client.post(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/scale",
        json={"replicas": 2},
        headers=c.world.a.keys["deploy"],
    ),
    "apps_logs": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/logs", headers=c.s("viewer")
    ),
    "apps_logs_stream": "tests/deploy/test_pipeline_image.py",
    "apps_stats": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_image_app(c)}/stats", headers=c.world.a.keys["read"]
    ),
    # Domains (tests/domains/ covers each in depth; verifying needs a DNS server, asking
    # needs a loopback client: both run against real ones there).
    "domains_list": lambda c: c.client.get(
        f"/api/v1/orgs/acme/apps/{_app(c)}/domains", headers=c.world.a.keys["read"]
    ),
    "domains_create": lambda c: c.client.post(
        f"/api/v1/orgs/acme/apps/{_app(c)}/domains",
        json={"name": "shop.example.com"},
        headers=c.world.a.keys["write"],
    ),
    "domains_show": lambda c: c.client.get(
        f"/api/v1/orgs/acme/domains/{_domain(c)}", headers=c.s("viewer")
    ),
    "domains_update": lambda c: c.client.patch(
        f"/api/v1/orgs/acme/domains/{_domain(c)}",
        json={"max_body_mb": 10},
        headers=c.s("developer"),
    ),
    "domains_verify": "tests/domains/test_api.py",
    "domains_delete": lambda c: c.client.delete(
        f"/api/v1/orgs/acme/domains/{_domain(c)}", headers=c.world.a.keys["admin"]
    ),
    "proxy_ask": "tests/domains/test_ask.py",
}


def test_every_operation_has_a_case(app: Any) -> None:
    from pathlib import Path

    missing = {o.op_id for o in operations(app)} - set(CASES)
    assert not missing, f"add a CASES entry for: {sorted(missing)}"
    stale = set(CASES) - {o.op_id for o in operations(app)}
    assert not stale, f"CASES names operations that no longer exist: {sorted(stale)}"
    root = Path(__file__).resolve().parents[1]
    for op_id, case in CASES.items():
        if isinstance(case, str):
            assert (root / case).is_file(), (op_id, case)


@pytest.mark.parametrize("op_id", sorted(k for k, v in CASES.items() if callable(v)))
def test_allowed_role_succeeds(
    op_id: str, client: Any, fresh_client: Any, kernel: Any, world: World
) -> None:
    case = CASES[op_id]
    assert callable(case)
    r = case(Ctx(client=client, fresh=fresh_client, kernel=kernel, world=world))
    assert 200 <= r.status_code < 300, (op_id, r.status_code, r.text)


def test_every_list_bounds_its_page_size(app: Any, client: Any, world: World) -> None:
    """Every operation with a ``limit`` query parameter refuses 0 and 201, naming it."""
    schema = client.get("/schema/openapi.json").json()
    checked = 0
    for path, item in schema["paths"].items():
        op = item.get("get")
        if not op or not any(p["name"] == "limit" for p in op.get("parameters", [])):
            continue
        # Other path parameters need not exist: the query is checked before the handler.
        url = re.sub(r"\{\w+\}", "1", re.sub(r"\{org\}", "acme", path))
        for bad in ("0", "201", "x"):
            r = client.get(url, params={"limit": bad}, headers=world.a.sessions["owner"])
            assert r.status_code in (400, 422), (op["operationId"], bad, r.status_code)
            assert "limit" in r.text, (op["operationId"], r.text)
        checked += 1
    assert checked >= 7
