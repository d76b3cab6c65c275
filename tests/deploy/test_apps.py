"""Apps: creation with defaults and a host port, partial updates, write-only git
credentials, deletion with its teardown job, roles, another organization, and bad
input on every field that reaches git, a path or Docker."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gakwaya.db.models import App, AppEnvVar, AuditRecord, Job
from gakwaya.deploy.apps import app_git_credentials
from gakwaya.settings import Settings, SettingsError
from tests.deploy.app_helpers import (
    API,
    OTHER,
    SSH_KEY,
    app_body,
    assert_invalid,
    counts,
    create_app,
    create_project,
    stored_text,
)
from tests.orgs.helpers import BAD_SLUGS, events_of

TOKEN = "ghp_s3cr3tT0kenValue1234567890abcdef"


@pytest.fixture
def dev(client, world):
    h = world.a.sessions["developer"]
    create_project(client, h)
    return h


def test_create_with_defaults(client, kernel, world, dev):
    body = create_app(client, dev)
    assert body == {
        **body,
        "name": "web",
        "project": "shop",
        "environment": "production",
        "source_type": "git",
        "git_url": "https://git.example.com/acme/web.git",
        "git_ref": "main",
        "subdirectory": "",
        "dockerfile": "Dockerfile",
        "image": "",
        "has_git_credentials": False,
        "port": 8000,
        "replicas": 1,
        "cpu": None,
        "memory_mb": None,
        "health": {"kind": "tcp", "path": "/", "interval": 2.0, "timeout": 3.0, "retries": 15},
        "restart_policy": "unless-stopped",
        "desired_state": "running",
        "current_release_id": None,
        "host_port": kernel.settings.app_ports[0],
    }
    assert body["key"] == f"{kernel.installation_id}-a{body['id']}"
    assert client.get(f"{API}/apps/{body['id']}", headers=world.a.sessions["viewer"]).json() == body
    created = events_of(kernel, "app.created")
    assert created[-1]["app_id"] == body["id"] and created[-1]["org_id"] == world.a.org.id
    with kernel.db.session() as db:
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "apps_create")).one()
    assert (audit.target_type, audit.target_id) == ("app", str(body["id"]))


def test_create_every_field(client, dev):
    body = create_app(
        client,
        dev,
        "api",
        git_ref="v1.2.3",
        subdirectory="services/api",
        dockerfile="docker/Dockerfile.prod",
        port=3000,
        replicas=3,
        cpu=0.5,
        memory_mb=512,
        health={"kind": "http", "path": "/healthz?full=1", "interval": 1, "timeout": 2},
        restart_policy="on-failure",
    )
    assert body["subdirectory"] == "services/api" and body["dockerfile"] == "docker/Dockerfile.prod"
    assert (body["port"], body["replicas"], body["cpu"], body["memory_mb"]) == (3000, 3, 0.5, 512)
    assert body["health"] == {
        "kind": "http",
        "path": "/healthz?full=1",
        "interval": 1.0,
        "timeout": 2.0,
        "retries": 15,
    }
    image = create_app(
        client, dev, "cache", source_type="image", git_url="", image="redis:7-alpine"
    )
    assert image["source_type"] == "image" and image["image"] == "redis:7-alpine"


def test_host_ports_are_lowest_free_and_stable(client, kernel, world, dev):
    low = kernel.settings.app_ports[0]  # this test process's range (tests/conftest.py)
    a = create_app(client, dev, "a")
    b = create_app(client, dev, "b")
    c = create_app(client, dev, "c")
    assert [a["host_port"], b["host_port"], c["host_port"]] == [low, low + 1, low + 2]
    r = client.patch(f"{API}/apps/{b['id']}", json={"port": 9000}, headers=dev)
    assert r.json()["host_port"] == low + 1
    assert (
        client.delete(f"{API}/apps/{b['id']}", headers=world.a.sessions["admin"]).status_code == 204
    )
    assert create_app(client, dev, "d")["host_port"] == low + 1
    # Ports are unique across organizations too: they are the host's.
    h = world.b.sessions["owner"]
    client.post(f"{OTHER}/projects", json={"name": "shop"}, headers=h)
    r = client.post(f"{OTHER}/apps", json=app_body("web"), headers=h)
    assert r.status_code == 201 and r.json()["host_port"] == low + 3


@pytest.mark.parametrize("bad", ["", "20000", "x-y", "30000-20000", "80-90", "20000-70000"])
def test_bad_port_range_setting(bad):
    with pytest.raises(SettingsError) as caught:
        Settings(app_port_range=bad)
    assert "app_port_range" in str(caught.value)


class TestExhausted:
    @pytest.fixture
    def settings_overrides(self):
        return {"app_port_range": "21000-21001", "app_max_replicas": 3}

    def test_no_free_port_is_503(self, client, kernel, dev):
        create_app(client, dev, "a")
        create_app(client, dev, "b")
        before = counts(kernel)
        r = client.post(f"{API}/apps", json=app_body("c"), headers=dev)
        assert r.status_code == 503 and "app_port_range" in r.json()["detail"]
        assert counts(kernel) == before

    def test_replicas_follow_the_setting(self, client, kernel, dev):
        before = counts(kernel)
        r = client.post(f"{API}/apps", json=app_body(replicas=4), headers=dev)
        assert_invalid(r, "replicas", "0 to 3")
        assert counts(kernel) == before
        app = create_app(client, dev, replicas=3)
        r = client.patch(f"{API}/apps/{app['id']}", json={"replicas": 4}, headers=dev)
        assert_invalid(r, "replicas", "0 to 3")


def test_duplicate_name_in_environment_is_409(client, kernel, world, dev):
    create_app(client, dev)
    before = counts(kernel)
    r = client.post(f"{API}/apps", json=app_body(), headers=dev)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    assert counts(kernel) == before
    client.post(f"{API}/projects/shop/environments", json={"name": "staging"}, headers=dev)
    assert create_app(client, dev, environment="staging")["environment"] == "staging"
    other = create_app(client, dev, "api")
    r = client.patch(f"{API}/apps/{other['id']}", json={"name": "web"}, headers=dev)
    assert r.status_code == 409


def test_unknown_project_or_environment_is_404(client, kernel, dev):
    r = client.post(f"{API}/apps", json=app_body(project="nope"), headers=dev)
    assert r.status_code == 404 and "project nope" in r.json()["detail"]
    r = client.post(f"{API}/apps", json=app_body(environment="nope"), headers=dev)
    assert r.status_code == 404 and "environment nope" in r.json()["detail"]
    assert counts(kernel)["apps"] == 0


def test_list_filters_and_pages(client, world, dev):
    client.post(f"{API}/projects/shop/environments", json={"name": "staging"}, headers=dev)
    create_project(client, dev, "blog")
    create_app(client, dev, "web")
    create_app(client, dev, "web", environment="staging")
    create_app(client, dev, "site", project="blog")
    viewer = world.a.sessions["viewer"]

    def names(**params):
        r = client.get(f"{API}/apps", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        return [(a["project"], a["environment"], a["name"]) for a in r.json()["items"]]

    assert names() == [
        ("blog", "production", "site"),
        ("shop", "staging", "web"),
        ("shop", "production", "web"),
    ]
    assert names(project="shop") == [("shop", "staging", "web"), ("shop", "production", "web")]
    assert names(environment="production") == [
        ("blog", "production", "site"),
        ("shop", "production", "web"),
    ]
    assert names(project="shop", environment="staging") == [("shop", "staging", "web")]
    assert names(project="nope") == []
    page = client.get(f"{API}/apps", params={"limit": 2}, headers=viewer).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(
        f"{API}/apps", params={"limit": 2, "cursor": page["next_cursor"]}, headers=viewer
    ).json()
    assert [a["name"] for a in rest["items"]] == ["web"] and rest["next_cursor"] is None


def test_update_is_partial(client, kernel, world, dev):
    app = create_app(client, dev, cpu=1, memory_mb=256)
    r = client.patch(
        f"{API}/apps/{app['id']}",
        json={"git_ref": "release/2", "health": {"kind": "http", "path": "/up"}, "cpu": None},
        headers=dev,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["git_ref"] == "release/2" and body["cpu"] is None and body["memory_mb"] == 256
    assert body["health"] == {**app["health"], "kind": "http", "path": "/up"}
    assert body["git_url"] == app["git_url"] and body["port"] == app["port"]
    updated = events_of(kernel, "app.updated")[-1]
    assert sorted(updated["fields"]) == ["cpu", "git_ref", "health.kind", "health.path"]
    # Switching to an image source needs an image; then it keeps the git fields.
    r = client.patch(f"{API}/apps/{app['id']}", json={"source_type": "image"}, headers=dev)
    assert_invalid(r, "image", "required")
    r = client.patch(
        f"{API}/apps/{app['id']}",
        json={"source_type": "image", "image": "ghcr.io/acme/web:1"},
        headers=dev,
    )
    assert r.status_code == 200 and r.json()["git_url"] == app["git_url"]
    # An empty body changes nothing and publishes nothing.
    n = len(events_of(kernel, "app.updated"))
    assert client.patch(f"{API}/apps/{app['id']}", json={}, headers=dev).status_code == 200
    assert len(events_of(kernel, "app.updated")) == n


def test_roles(client, world, dev):
    viewer, admin = world.a.sessions["viewer"], world.a.sessions["admin"]
    r = client.post(f"{API}/apps", json=app_body(), headers=viewer)
    assert r.status_code == 403 and "apps.write" in r.json()["detail"]
    app = create_app(client, dev)
    url = f"{API}/apps/{app['id']}"
    assert client.get(f"{API}/apps", headers=viewer).status_code == 200
    assert client.get(url, headers=viewer).status_code == 200
    assert client.patch(url, json={"port": 1234}, headers=viewer).status_code == 403
    assert client.patch(url, json={"port": 1234}, headers=dev).status_code == 200
    r = client.delete(url, headers=dev)
    assert r.status_code == 403 and "apps.delete" in r.json()["detail"]
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=viewer).status_code == 404


def test_delete_cascades_and_queues_teardown(client, kernel, world, dev):
    app = create_app(client, dev)
    keep = create_app(client, dev, "keep")
    r = client.patch(
        f"{API}/apps/{app['id']}/env", json={"vars": {"A": {"value": "1"}}}, headers=dev
    )
    assert r.status_code == 200
    r = client.delete(f"{API}/apps/{app['id']}", headers=world.a.sessions["admin"])
    assert r.status_code == 204, r.text
    with kernel.db.session() as db:
        assert db.get(App, app["id"]) is None and db.get(App, keep["id"]) is not None
        assert db.scalars(select(AppEnvVar).where(AppEnvVar.app_id == app["id"])).all() == []
        jobs = db.scalars(select(Job).where(Job.type == "apps.teardown")).all()
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "apps_delete")).one()
    assert [(j.org_id, j.arguments) for j in jobs] == [
        (world.a.org.id, {"app_id": app["id"], "org_id": world.a.org.id})
    ]
    assert (audit.target_type, audit.target_id) == ("app", str(app["id"]))
    assert events_of(kernel, "app.deleted")[-1]["app_id"] == app["id"]


def test_another_org_is_404_on_every_app_route(client, kernel, world, dev):
    app = create_app(client, dev)
    client.patch(f"{API}/apps/{app['id']}/env", json={"vars": {"A": {"value": "1"}}}, headers=dev)
    before = counts(kernel)
    outsider = world.b.sessions["owner"]
    base = f"{OTHER}/apps/{app['id']}"
    for method, url, body in [
        ("GET", base, None),
        ("PATCH", base, {"port": 1}),
        ("DELETE", base, None),
        ("GET", f"{base}/env", None),
        ("PATCH", f"{base}/env", {"vars": {"B": {"value": "2"}}}),
        ("DELETE", f"{base}/env/A", None),
        ("POST", f"{OTHER}/apps", app_body()),
    ]:
        r = client.request(method, url, json=body, headers=outsider)
        assert r.status_code == 404, (method, url, r.text)
        assert "Acme" not in r.text and "shop" not in r.text.replace("project shop", "")
    assert client.get(f"{OTHER}/apps", headers=outsider).json()["items"] == []
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(method, f"{API}/apps/{app['id']}", json={}, headers=outsider)
        assert r.status_code == 404
    assert counts(kernel) == before


# Git credentials ------------------------------------------------------------------------


def test_https_token_is_write_only(client, kernel, world, dev):
    app = create_app(client, dev, git_credentials={"https_token": TOKEN, "https_username": "ci"})
    assert app["has_git_credentials"] is True and TOKEN not in json.dumps(app)
    for r in (
        client.get(f"{API}/apps/{app['id']}", headers=dev),
        client.get(f"{API}/apps", headers=dev),
    ):
        assert TOKEN not in r.text
    with kernel.db.session() as db:
        row = db.get(App, app["id"])
        assert app_git_credentials(kernel.box, row) == {
            "https_token": TOKEN,
            "https_username": "ci",
        }
    assert TOKEN not in stored_text(kernel)
    # PATCH with null removes them.
    r = client.patch(f"{API}/apps/{app['id']}", json={"git_credentials": None}, headers=dev)
    assert r.json()["has_git_credentials"] is False
    with kernel.db.session() as db:
        assert db.get(App, app["id"]).git_credentials is None


def test_ssh_key_needs_an_ssh_url(client, kernel, dev):
    before = counts(kernel)
    r = client.post(
        f"{API}/apps", json=app_body(git_credentials={"ssh_private_key": SSH_KEY}), headers=dev
    )
    assert_invalid(r, "git_credentials", "ssh")
    app = create_app(
        client,
        dev,
        git_url="git@github.com:acme/web.git",
        git_credentials={"ssh_private_key": SSH_KEY},
    )
    assert app["has_git_credentials"]
    with kernel.db.session() as db:
        creds = app_git_credentials(kernel.box, db.get(App, app["id"]))
    assert creds == {"ssh_private_key": SSH_KEY}
    assert "PRIVATE KEY" not in stored_text(kernel)
    # Moving the URL to https while keeping an SSH key is refused.
    r = client.patch(
        f"{API}/apps/{app['id']}", json={"git_url": "https://github.com/acme/web"}, headers=dev
    )
    assert_invalid(r, "git_credentials", "https")
    assert counts(kernel)["apps"] == before["apps"] + 1
    with kernel.db.session() as db:
        assert db.get(App, app["id"]).git_url == "git@github.com:acme/web.git"


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    ("creds", "field"),
    [
        ({}, "git_credentials"),
        ({"ssh_private_key": SSH_KEY, "https_token": TOKEN}, "git_credentials"),
        ({"https_username": "ci"}, "git_credentials"),
        ({"https_token": "has space"}, "git_credentials.https_token"),
        ({"https_token": "tok\nen"}, "git_credentials.https_token"),
        ({"https_token": ""}, "git_credentials.https_token"),
        ({"https_token": TOKEN, "https_username": "a b"}, "git_credentials.https_username"),
        ({"https_token": TOKEN, "https_username": "$(id)"}, "git_credentials.https_username"),
    ],
)
def test_bad_https_credentials(client, kernel, dev, creds, field):
    before = counts(kernel)
    r = client.post(f"{API}/apps", json=app_body(git_credentials=creds), headers=dev)
    assert_invalid(r, field)
    assert counts(kernel) == before


@pytest.mark.parametrize(
    "key",
    [
        "not a key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n$(touch /tmp/x)\n-----END OPENSSH PRIVATE KEY-----",
        SSH_KEY.replace("-----END OPENSSH", "-----END RSA"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        SSH_KEY + "extra\n",
    ],
)
def test_bad_ssh_keys(client, kernel, dev, key):
    before = counts(kernel)
    body = app_body(git_url="ssh://git@git.example.com/acme/web.git")
    r = client.post(
        f"{API}/apps", json={**body, "git_credentials": {"ssh_private_key": key}}, headers=dev
    )
    assert_invalid(r, "git_credentials.ssh_private_key", "private key")
    assert counts(kernel) == before


# Bad input -------------------------------------------------------------------------------

BAD_GIT_URLS = [
    "ext::sh -c touch% /tmp/x",
    "ext::sh",
    "file:///etc/passwd",
    "-uhttps://x",
    "--upload-pack=touch /tmp/x",
    "https://example.com/a b",
    " https://example.com/a",
    "https://example.com/a;touch /tmp/x",
    "https://example.com/$(touch /tmp/x)",
    "https://example.com/`touch /tmp/x`",
    "https://example.com/a\n",
    "https://example.com/a\nb",
    "https://example.com/../etc",
    "http://example.com/a.git",
    "git://example.com/a.git",
    "/srv/repo.git",
    "x" * 501,
]
BAD_REFS = [
    "main;touch /tmp/x",
    "-x",
    "--upload-pack=x",
    "..",
    "a..b",
    "$(x)",
    "`x`",
    "main\n",
    "a b",
    "",
]
BAD_PATHS = ["../x", "/etc/passwd", "-x", "a/../../b", "a\n", "a;b", "$(x)", ".", "./x", "a b"]
BAD_IMAGES = ["Debian", "-x", "a;b", "a b", "debian\n", "$(x)", "debian:`x`", "", "a" * 256]


@pytest.mark.edge_rule
@pytest.mark.parametrize("bad", BAD_GIT_URLS)
def test_bad_git_urls(client, kernel, dev, bad):
    _refused(client, kernel, dev, "git_url", "git URL", git_url=bad)


@pytest.mark.edge_rule
@pytest.mark.parametrize("bad", BAD_REFS)
def test_bad_git_refs(client, kernel, dev, bad):
    _refused(client, kernel, dev, "git_ref", "branch, tag or commit", git_ref=bad)


@pytest.mark.edge_rule
@pytest.mark.parametrize("bad", BAD_PATHS)
@pytest.mark.parametrize("field", ["subdirectory", "dockerfile"])
def test_bad_paths(client, kernel, dev, field, bad):
    _refused(client, kernel, dev, field, "relative path", **{field: bad})


def test_empty_dockerfile_is_refused_but_empty_subdirectory_is_fine(client, kernel, dev):
    _refused(client, kernel, dev, "dockerfile", "relative path", dockerfile="")
    assert create_app(client, dev, subdirectory="")["subdirectory"] == ""


@pytest.mark.edge_rule
@pytest.mark.parametrize("bad", BAD_IMAGES)
def test_bad_images(client, kernel, dev, bad):
    _refused(client, kernel, dev, "image", "image reference", source_type="image", image=bad)


def test_git_source_needs_a_url(client, kernel, dev):
    _refused(client, kernel, dev, "git_url", "required", git_url="")


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("port", 0, ">= 1"),
        ("port", 65536, "<= 65535"),
        ("replicas", -1, ">= 0"),
        ("replicas", 11, "0 to 10"),
        ("cpu", 0.01, ">= 0.05"),
        ("cpu", 65, "<= 64"),
        ("memory_mb", 16, ">= 32"),
        ("memory_mb", 262145, "<= 262144"),
        ("restart_policy", "sometimes", "one of no, on-failure, always, unless-stopped"),
        ("source_type", "svn", "one of git, image"),
        ("name", "Web", "lowercase"),
    ],
)
def test_out_of_range_values(client, kernel, dev, field, value, rule):
    _refused(client, kernel, dev, field, rule, **{field: value})


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    ("part", "value", "rule"),
    [
        ("kind", "udp", "one of http, tcp, none"),
        ("path", "healthz", "starting with '/'"),
        ("path", "/a b", "starting with '/'"),
        ("path", "/a;touch /tmp/x", "starting with '/'"),
        ("path", "/$(x)", "starting with '/'"),
        ("path", "/a\n", "starting with '/'"),
        ("interval", 0.1, ">= 0.5"),
        ("interval", 301, "<= 300"),
        ("timeout", 0, ">= 0.5"),
        ("timeout", 61, "<= 60"),
        ("retries", 0, ">= 1"),
        ("retries", 101, "<= 100"),
    ],
)
def test_bad_health_checks(client, kernel, dev, part, value, rule):
    _refused(client, kernel, dev, f"health.{part}", rule, health={part: value})


@pytest.mark.edge_rule
@pytest.mark.parametrize("bad", BAD_SLUGS)
def test_bad_app_names(client, kernel, dev, bad):
    _refused(client, kernel, dev, "name", "lowercase letters", name=bad)


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("git_url", BAD_GIT_URLS[0]),
        ("git_url", BAD_GIT_URLS[3]),
        ("git_ref", BAD_REFS[0]),
        ("subdirectory", "../x"),
        ("dockerfile", "/etc/passwd"),
        ("image", "a;b"),
        ("port", 0),
        ("health", {"path": "/a b"}),
        ("name", "a;b"),
    ],
)
def test_bad_updates_change_nothing(client, kernel, dev, field, value):
    app = create_app(client, dev, image="debian:12")
    r = client.patch(f"{API}/apps/{app['id']}", json={field: value}, headers=dev)
    assert r.status_code == 422, r.text
    assert any(f.startswith(field) for f in (e["field"] for e in r.json()["errors"]))
    assert client.get(f"{API}/apps/{app['id']}", headers=dev).json() == app


def _refused(client, kernel, dev, field, rule, **values):
    before = counts(kernel)
    r = client.post(f"{API}/apps", json=app_body(**values), headers=dev)
    assert_invalid(r, field, rule)
    assert counts(kernel) == before
