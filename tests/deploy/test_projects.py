"""Projects and environments: roles, another organization, conflicts, bad names."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gakwaya.db.models import AuditRecord, Environment
from tests.deploy.app_helpers import (
    API,
    OTHER,
    assert_invalid,
    counts,
    create_app,
    create_project,
)
from tests.orgs.helpers import BAD_SLUGS


def test_create_makes_production_and_is_audited(client, kernel, world):
    body = create_project(client, world.a.sessions["developer"], description="The shop")
    assert body["name"] == "shop" and body["description"] == "The shop"
    assert body["environments"] == ["production"]
    with kernel.db.session() as db:
        envs = db.scalars(select(Environment).where(Environment.project_id == body["id"])).all()
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "projects_create")).one()
    assert [e.name for e in envs] == ["production"]
    assert envs[0].org_id == world.a.org.id
    assert (audit.target_type, audit.target_id, audit.outcome) == (
        "project",
        str(body["id"]),
        "success",
    )


def test_roles(client, world):
    viewer, developer = world.a.sessions["viewer"], world.a.sessions["developer"]
    r = client.post(f"{API}/projects", json={"name": "shop"}, headers=viewer)
    assert r.status_code == 403 and "projects.write" in r.json()["detail"]
    create_project(client, developer)
    for url in (f"{API}/projects", f"{API}/projects/shop", f"{API}/projects/shop/environments"):
        r = client.get(url, headers=viewer)
        assert r.status_code == 200, (url, r.text)
    r = client.get(f"{API}/projects/shop/environments/production", headers=viewer)
    assert r.status_code == 200 and r.json()["project"] == "shop"
    r = client.patch(f"{API}/projects/shop", json={"description": "x"}, headers=viewer)
    assert r.status_code == 403
    r = client.patch(f"{API}/projects/shop", json={"description": "New"}, headers=developer)
    assert r.status_code == 200 and r.json()["description"] == "New"
    r = client.post(f"{API}/projects/shop/environments", json={"name": "staging"}, headers=viewer)
    assert r.status_code == 403
    r = client.post(
        f"{API}/projects/shop/environments", json={"name": "staging"}, headers=developer
    )
    assert r.status_code == 201 and r.json()["name"] == "staging"
    assert client.get(f"{API}/projects/shop", headers=viewer).json()["environments"] == [
        "production",
        "staging",
    ]
    r = client.delete(f"{API}/projects/shop/environments/staging", headers=viewer)
    assert r.status_code == 403
    r = client.delete(f"{API}/projects/shop/environments/staging", headers=developer)
    assert r.status_code == 204
    assert client.delete(f"{API}/projects/shop", headers=viewer).status_code == 403
    assert client.delete(f"{API}/projects/shop", headers=developer).status_code == 204
    assert client.get(f"{API}/projects/shop", headers=viewer).status_code == 404


def test_list_is_paginated_newest_first(client, world):
    h = world.a.sessions["developer"]
    for name in ("p1", "p2", "p3"):
        create_project(client, h, name)
    r = client.get(f"{API}/projects", params={"limit": 2}, headers=h)
    page = r.json()
    assert [p["name"] for p in page["items"]] == ["p3", "p2"] and page["next_cursor"]
    r = client.get(f"{API}/projects", params={"limit": 2, "cursor": page["next_cursor"]}, headers=h)
    assert [p["name"] for p in r.json()["items"]] == ["p1"] and r.json()["next_cursor"] is None


def test_duplicate_names_are_409(client, kernel, world):
    h = world.a.sessions["developer"]
    create_project(client, h)
    before = counts(kernel)
    r = client.post(f"{API}/projects", json={"name": "shop"}, headers=h)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    r = client.post(f"{API}/projects/shop/environments", json={"name": "production"}, headers=h)
    assert r.status_code == 409 and "production" in r.json()["detail"]
    assert counts(kernel) == before
    # The same name in another organization is fine: names are per organization.
    r = client.post(f"{OTHER}/projects", json={"name": "shop"}, headers=world.b.sessions["owner"])
    assert r.status_code == 201


def test_delete_with_apps_is_409_naming_them(client, kernel, world):
    h = world.a.sessions["developer"]
    create_project(client, h)
    client.post(f"{API}/projects/shop/environments", json={"name": "staging"}, headers=h)
    create_app(client, h, "web")
    create_app(client, h, "worker", environment="staging")
    before = counts(kernel)
    r = client.delete(f"{API}/projects/shop", headers=world.a.sessions["admin"])
    assert r.status_code == 409, r.text
    assert "production/web" in r.json()["detail"] and "staging/worker" in r.json()["detail"]
    r = client.delete(f"{API}/projects/shop/environments/staging", headers=h)
    assert r.status_code == 409 and "worker" in r.json()["detail"]
    assert "web" not in r.json()["detail"]
    assert counts(kernel) == before


def test_another_org_is_404(client, kernel, world):
    create_project(client, world.a.sessions["developer"])
    before = counts(kernel)
    outsider = world.b.sessions["owner"]
    # Through their own organization's URL, acme's project does not exist.
    for method, url, body in [
        ("GET", f"{OTHER}/projects/shop", None),
        ("PATCH", f"{OTHER}/projects/shop", {"description": "x"}),
        ("DELETE", f"{OTHER}/projects/shop", None),
        ("GET", f"{OTHER}/projects/shop/environments", None),
        ("POST", f"{OTHER}/projects/shop/environments", {"name": "staging"}),
        ("GET", f"{OTHER}/projects/shop/environments/production", None),
        ("DELETE", f"{OTHER}/projects/shop/environments/production", None),
    ]:
        r = client.request(method, url, json=body, headers=outsider)
        assert r.status_code == 404, (method, url, r.text)
        assert "Acme" not in r.text
    assert client.get(f"{OTHER}/projects", headers=outsider).json()["items"] == []
    # Through acme's URL, they are not a member: 404 too.
    r = client.get(f"{API}/projects/shop", headers=outsider)
    assert r.status_code == 404
    assert counts(kernel) == before


@pytest.mark.parametrize("bad", BAD_SLUGS)
def test_bad_names_are_422_and_write_nothing(client, kernel, world, bad):
    h = world.a.sessions["developer"]
    create_project(client, h)
    before = counts(kernel)
    r = client.post(f"{API}/projects", json={"name": bad}, headers=h)
    assert_invalid(r, "name", "lowercase letters")
    r = client.post(f"{API}/projects/shop/environments", json={"name": bad}, headers=h)
    assert_invalid(r, "name", "lowercase letters")
    assert counts(kernel) == before


@pytest.mark.parametrize("bad", ["a\nb", "tab\there", "nul\x00", "x" * 501])
def test_bad_descriptions_are_422(client, kernel, world, bad):
    h = world.a.sessions["developer"]
    before = counts(kernel)
    r = client.post(f"{API}/projects", json={"name": "shop", "description": bad}, headers=h)
    assert_invalid(r, "description", "500 characters")
    assert counts(kernel) == before


def test_unknown_fields_are_refused(client, kernel, world):
    h = world.a.sessions["developer"]
    r = client.post(f"{API}/projects", json={"name": "shop", "org_id": 2}, headers=h)
    assert r.status_code in (400, 422)
    assert counts(kernel)["projects"] == 0
