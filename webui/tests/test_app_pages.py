"""The organization and app pages: what each role sees, the API's refusals shown on
the page (CSRF, role, another organization, bad input), and nothing written when
the API refuses."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from webui_testlib import CSP, as_session, form, make_app, text_of

from gakwaya.db.models import App, AppEnvVar, AuditRecord, Deployment, Domain, Project
from gakwaya.kernel import Kernel
from tests.conftest import World

API = "/api/v1/orgs/acme"
INJECTIONS = ["a;id", "$(id)", "`id`", "..", "-rf", "a\nb"]


def count(kernel: Kernel, model: Any) -> int:
    with kernel.db.session() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def actions(kernel: Kernel) -> list[str]:
    with kernel.db.session() as db:
        return list(db.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


# Organization overview ----------------------------------------------------------------


def test_overview_empty_state_then_project_created(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    r = c.get("/orgs/acme")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert "No project yet" in r.text
    assert 'action="/orgs/acme/projects"' in r.text
    before = actions(kernel)
    r = form(c, "/orgs/acme/projects", {"name": "shop", "description": "The shop"})
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/orgs/acme")
    # One audit row: the API's, not one more for the page.
    assert actions(kernel)[len(before) :] == ["projects_create"]
    r = c.get("/orgs/acme")
    assert "Project shop created" in r.text
    assert 'id="project-shop"' in r.text and "production" in r.text
    assert "/orgs/acme/apps/new?project=shop&amp;environment=production" in r.text


def test_viewer_sees_no_forms_and_gets_the_api_403(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    c = as_session(app, world.a.sessions["viewer"])
    r = c.get("/orgs/acme")
    assert r.status_code == 200
    assert 'action="/orgs/acme/projects"' not in r.text
    assert "can create the first project" in r.text
    r = form(c, "/orgs/acme/projects", {"name": "shop"})
    assert r.status_code == 403
    assert "your role &#39;viewer&#39; does not grant &#39;projects.write&#39;" in r.text
    assert count(kernel, Project) == 0
    assert actions(kernel)[-1] == "projects_create"  # the API's refusal, audited once


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_form_without_the_right_csrf_token_is_refused(
    app: Any, client: Any, kernel: Kernel, world: World, token: str | None
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    data = {"name": "shop"} if token is None else {"name": "shop", "csrf_token": token}
    r = c.post("/orgs/acme/projects", data=data)
    assert r.status_code == 403
    assert "CSRF token missing or wrong" in text_of(r.text)
    assert count(kernel, Project) == 0


def test_another_organizations_pages_are_404(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    outsider = as_session(app, world.b.sessions["owner"])
    base = f"/orgs/acme/apps/{created['id']}"
    for url in (
        "/orgs/acme",
        "/orgs/acme/projects/shop",
        "/orgs/acme/apps/new",
        base,
        f"{base}/deploy",
        f"{base}/deployments",
        f"{base}/releases",
        f"{base}/env",
        f"{base}/domains",
        f"{base}/logs",
        f"{base}/stats",
        f"{base}/settings",
    ):
        r = outsider.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-security-policy"] == CSP
        assert "acme" not in text_of(r.text).replace("&#39;acme&#39;", "").lower() or (
            "not found" in r.text.lower()
        )
    r = form(outsider, "/orgs/acme/projects", {"name": "stolen"})
    assert r.status_code == 404
    r = form(outsider, f"{base}/env", {"key": "X", "value": "1"})
    assert r.status_code == 404
    r = form(outsider, f"{base}/delete", {"confirmed": "yes"})
    assert r.status_code == 404
    assert count(kernel, App) == 1 and count(kernel, AppEnvVar) == 0
    # Their own app ids are just as unknown under their organization.
    assert outsider.get(f"/orgs/globex/apps/{created['id']}").status_code == 404


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_in_project_and_app_fields_is_refused_by_the_api(
    app: Any, client: Any, kernel: Kernel, world: World, payload: str
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    r = form(c, "/orgs/acme/projects", {"name": payload})
    assert r.status_code == 422, r.text
    assert 'id="e-name"' in r.text
    assert count(kernel, Project) == 0
    make_app(client, world, name="base")
    before = count(kernel, App)
    for name, value in (("name", payload), ("git_url", f"https://h.example/{payload}")):
        data = {
            "target": "shop/production",
            "name": "web",
            "source_type": "git",
            "git_url": "https://git.example.com/a.git",
            "git_ref": "main",
            name: value,
        }
        r = form(c, "/orgs/acme/apps/new", data)
        if name == "git_url" and payload in ("..", "-rf"):
            # Harmless inside a URL's path ("/..", "/-rf" are not options or segments
            # git resolves): the API accepts them; git_ref gets them below.
            continue
        assert r.status_code == 422, (name, payload, r.text)
        assert f'id="e-{name}"' in r.text, (name, payload)
    data = {
        "target": "shop/production",
        "name": "web2",
        "git_url": "https://git.example.com/a.git",
        "git_ref": payload if payload != ".." else "a..b",
    }
    r = form(c, "/orgs/acme/apps/new", data)
    assert r.status_code == 422, r.text
    assert 'id="e-git_ref"' in r.text
    assert count(kernel, App) in (before, before + 1)


def test_project_page_adds_and_deletes_an_environment(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    client.post(f"{API}/projects", json={"name": "shop"}, headers=world.a.sessions["owner"])
    r = c.get("/orgs/acme/projects/shop")
    assert r.status_code == 200 and "production" in r.text
    r = form(c, "/orgs/acme/projects/shop/environments", {"name": "staging"})
    assert r.status_code == 303
    assert "staging" in c.get("/orgs/acme/projects/shop").text
    # Without confirmation: a page asking first, nothing deleted.
    r = form(c, "/orgs/acme/projects/shop/environments/staging/delete", {})
    assert r.status_code == 200
    assert "Are you sure?" in r.text and 'name="confirmed" value="yes"' in r.text
    assert "staging" in c.get("/orgs/acme/projects/shop").text
    r = form(c, "/orgs/acme/projects/shop/environments/staging/delete", {"confirmed": "yes"})
    assert r.status_code == 303
    assert "Environment staging deleted." in c.get("/orgs/acme/projects/shop").text


# Apps ------------------------------------------------------------------------------------


def test_create_app_then_every_tab_renders(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    c = as_session(app, world.a.sessions["developer"])
    client.post(f"{API}/projects", json={"name": "shop"}, headers=world.a.sessions["owner"])
    r = c.get("/orgs/acme/apps/new?project=shop&environment=production")
    assert r.status_code == 200
    assert '<option value="shop/production" selected>' in r.text
    r = form(
        c,
        "/orgs/acme/apps/new",
        {
            "target": "shop/production",
            "name": "web",
            "source_type": "git",
            "git_url": "https://git.example.com/acme/web.git",
            "git_ref": "main",
            "dockerfile": "Dockerfile",
            "port": "8000",
            "replicas": "1",
            "cpu": "",
            "memory_mb": "256",
        },
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.endswith("/deploy")
    base = location.removesuffix("/deploy")
    r = c.get(base)
    assert r.status_code == 200, r.text
    assert "Not deployed yet" in r.text
    assert "memory 256 MiB" in text_of(r.text)
    assert 'data-events="/api/v1/orgs/acme/events/stream"' in r.text
    for tab in ("deploy", "deployments", "releases", "env", "domains", "logs", "stats", "settings"):
        r = c.get(f"{base}/{tab}")
        assert r.status_code == 200, (tab, r.text)
        assert r.headers["content-security-policy"] == CSP
        assert 'aria-current="page"' in r.text
    assert "No deployment" in c.get(f"{base}/deployments").text
    assert "No release yet" in c.get(f"{base}/releases").text
    assert "No variable yet" in c.get(f"{base}/env").text
    frag = c.get(f"{base}/status")
    assert frag.status_code == 200 and 'id="app-status"' in frag.text
    assert "<html" not in frag.text


def test_viewer_sees_an_app_but_no_forms(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["viewer"])
    base = f"/orgs/acme/apps/{created['id']}"
    r = c.get(base)
    assert r.status_code == 200
    assert 'action="' + base + '/delete"' not in r.text
    assert 'action="' + base + '/start"' not in r.text
    assert 'action="' + base + '/env"' not in c.get(f"{base}/env").text
    r = form(c, f"{base}/env", {"key": "A", "value": "1"})
    assert r.status_code == 403
    assert "does not grant &#39;env.write&#39;" in r.text
    r = form(c, f"{base}/deploy", {})
    assert r.status_code == 403
    assert count(kernel, AppEnvVar) == 0 and count(kernel, Deployment) == 0


def test_environment_variables_mask_secrets(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{created['id']}"
    r = form(c, f"{base}/env", {"key": "PLAIN", "value": "visible-value"})
    assert r.status_code == 303
    r = form(c, f"{base}/env", {"key": "TOKEN", "value": "s3cr3t-v4lue", "secret": "on"})
    assert r.status_code == 303
    page = c.get(f"{base}/env")
    assert "visible-value" in page.text
    assert "s3cr3t-v4lue" not in page.text
    assert "TOKEN" in page.text and "(secret)" in page.text
    # A refused secret value is not sent back either.
    r = form(c, f"{base}/env", {"key": "bad key;", "value": "other-s3cret", "secret": "on"})
    assert r.status_code == 422
    assert 'id="e-key"' in r.text and "other-s3cret" not in r.text
    r = form(c, f"{base}/env", {"key": "NUL", "value": "a\x00b"})
    assert r.status_code == 422 and 'id="e-value"' in r.text
    # Removing asks first, then removes.
    r = form(c, f"{base}/env/PLAIN/delete", {})
    assert "Are you sure?" in r.text
    r = form(c, f"{base}/env/PLAIN/delete", {"confirmed": "yes"})
    assert r.status_code == 303
    assert "PLAIN" not in text_of(c.get(f"{base}/env").text).replace("PLAIN removed", "")
    assert count(kernel, AppEnvVar) == 1


def test_deploy_shows_the_log_page_and_cancel_asks_first(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{created['id']}"
    r = form(c, f"{base}/deploy", {"ref": "$(id)"})
    assert r.status_code == 422 and 'id="e-ref"' in r.text
    assert count(kernel, Deployment) == 0
    r = form(c, f"{base}/deploy", {"ref": ""})
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(f"{base}/deployments/")
    deployment_id = int(location.rsplit("/", 1)[1])
    r = c.get(location)
    assert r.status_code == 200
    assert "Build and deploy log" in r.text
    if "data-sse=" in r.text:
        assert f'data-sse="/api/v1/orgs/acme/deployments/{deployment_id}/logs"' in r.text
    listing = c.get(f"{base}/deployments")
    assert f"{base}/deployments/{deployment_id}" in listing.text
    r = form(c, f"{base}/deployments/{deployment_id}/cancel", {})
    assert r.status_code == 200 and "Are you sure?" in r.text
    r = form(c, f"{base}/deployments/{deployment_id}/cancel", {"confirmed": "yes"})
    assert r.status_code == 303
    assert r.headers["location"] == location
    # Another app's deployment under this app's URL is not found.
    other = make_app(client, world, name="other")
    assert c.get(f"/orgs/acme/apps/{other['id']}/deployments/{deployment_id}").status_code == 404


def test_rollback_is_confirmed_then_queued(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    from gakwaya.db.models import Release
    from gakwaya.deploy.runtime import seal_env

    created = make_app(client, world, source_type="image", image="gakwaya-test/absent:1")
    created.pop("git_url", None)
    with kernel.db.transaction() as db:
        row = Release(
            org_id=world.a.org.id,
            app_id=created["id"],
            number=1,
            image="gakwaya-test/absent:1",
            image_id="gakwaya-test/absent:1",
            env_ciphertext=seal_env(kernel.box, {}),
        )
        db.add(row)
        db.flush()
        release_id = int(row.id)
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{created['id']}"
    r = c.get(f"{base}/releases")
    assert r.status_code == 200 and "Roll back to #1" in r.text
    r = form(c, f"{base}/releases/{release_id}/rollback", {})
    assert "Are you sure?" in r.text and count(kernel, Deployment) == 0
    before = actions(kernel)
    r = form(c, f"{base}/releases/{release_id}/rollback", {"confirmed": "yes"})
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(f"{base}/deployments/")
    assert actions(kernel)[len(before) :] == ["releases_rollback"]
    assert count(kernel, Deployment) == 1


@pytest.mark.parametrize("payload", INJECTIONS)
def test_domain_injection_is_refused(
    app: Any, client: Any, kernel: Kernel, world: World, payload: str
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{created['id']}"
    before = count(kernel, Domain)
    r = form(c, f"{base}/domains", {"name": f"{payload}.example.com", "redirect": "none"})
    assert r.status_code == 422, r.text
    assert 'id="e-name"' in r.text
    assert count(kernel, Domain) == before


def test_domain_lists_dns_records_and_removal_asks_first(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["admin"])
    base = f"/orgs/acme/apps/{created['id']}"
    r = form(
        c,
        f"{base}/domains",
        {"name": "shop.example.com", "redirect": "none", "https_redirect": "on"},
    )
    assert r.status_code == 303, r.text
    page = c.get(f"{base}/domains")
    assert "shop.example.com" in page.text
    assert "Create these records at your DNS host" in page.text
    domain_id = int(page.text.split('id="domain-', 2)[-1].split('"', 1)[0])
    r = form(c, f"{base}/domains/{domain_id}/verify", {})
    assert r.status_code == 303
    r = form(c, f"{base}/domains/{domain_id}/delete", {})
    assert "Are you sure?" in r.text
    r = form(c, f"{base}/domains/{domain_id}/delete", {"confirmed": "yes"})
    assert r.status_code == 303
    assert "shop.example.com" not in c.get(f"{base}/domains").text.replace("Domain removed", "")


def test_new_organization(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    c = as_session(app, world.a.sessions["viewer"])
    r = c.get("/orgs/new")
    assert r.status_code == 200
    r = form(c, "/orgs/new", {"slug": "$(id)", "name": "X"})
    assert r.status_code == 422 and 'id="e-slug"' in r.text
    r = form(c, "/orgs/new", {"slug": "initech", "name": "Initech"})
    assert r.status_code == 303 and r.headers["location"] == "/orgs/initech"
    assert "Initech" in c.get("/").text


def test_lifecycle_forms_show_the_api_refusals(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{created['id']}"
    for bad in ("abc", "-1", "99"):
        r = form(c, f"{base}/scale", {"replicas": bad})
        assert r.status_code in (400, 422), (bad, r.text)
        assert "replicas" in text_of(r.text), bad
    # Stopping asks first; the API then refuses an app that never ran, and says why.
    r = form(c, f"{base}/stop", {})
    assert r.status_code == 200 and "Are you sure?" in r.text
    before = actions(kernel)
    r = form(c, f"{base}/stop", {"confirmed": "yes"})
    assert r.status_code == 409
    assert "deploy it first" in text_of(r.text)
    assert actions(kernel)[len(before) :] == ["apps_stop"]
    # Deleting is for admins: a developer gets the API's reason.
    r = form(c, f"{base}/delete", {"confirmed": "yes"})
    assert r.status_code == 403 and "apps.delete" in r.text
    admin = as_session(app, world.a.sessions["admin"])
    r = form(admin, f"{base}/delete", {"confirmed": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/orgs/acme"
    assert admin.get(base).status_code == 404


def test_settings_form_saves_and_names_bad_fields(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    created = make_app(client, world)
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{created['id']}"
    r = c.get(f"{base}/settings")
    assert r.status_code == 200 and 'value="https://git.example.com/acme/web.git"' in r.text
    data = {
        "git_url": "https://git.example.com/acme/web.git",
        "git_ref": "release",
        "subdirectory": "",
        "dockerfile": "Dockerfile",
        "port": "9000",
        "cpu": "0.5",
        "memory_mb": "",
        "health.kind": "http",
        "health.path": "/healthz",
        "restart_policy": "always",
    }
    r = form(c, f"{base}/settings", data)
    assert r.status_code == 303, r.text
    shown = client.get(f"{API}/apps/{created['id']}", headers=world.a.sessions["owner"]).json()
    assert (shown["git_ref"], shown["port"], shown["cpu"], shown["memory_mb"]) == (
        "release",
        9000,
        0.5,
        None,
    )
    assert shown["health"]["path"] == "/healthz"
    for name, bad in (
        ("git_ref", "$(id)"),
        ("subdirectory", "../etc"),
        ("dockerfile", "-f"),
        ("health.path", "/a;b c"),
        ("port", "70000"),
    ):
        r = form(c, f"{base}/settings", {**data, name: bad})
        assert r.status_code in (400, 422), (name, r.text)
        assert f'id="e-{name}"' in r.text, (name, text_of(r.text))
    after = client.get(f"{API}/apps/{created['id']}", headers=world.a.sessions["owner"]).json()
    assert after == shown
    viewer = as_session(app, world.a.sessions["viewer"])
    assert f'action="{base}/settings"' not in viewer.get(f"{base}/settings").text
    r = form(viewer, f"{base}/settings", data)
    assert r.status_code == 403 and "apps.write" in r.text
