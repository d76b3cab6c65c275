"""App lists longer than one page of the API (200 apps): the organization overview and
the project page walk the API's own pages (its ``cursor``) and filters (``project``,
``environment``), so every app is reachable from the dashboard, each exactly once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from webui_testlib import CSP, as_session, text_of

from gakwaya.db.models import App, Environment, Project
from gakwaya.kernel import Kernel
from tests.conftest import World

API = "/api/v1/orgs/acme"
#: (project, environment) → how many apps: 225 in all, 210 in shop.
LAYOUT = {("shop", "production"): 190, ("shop", "staging"): 20, ("blog", "production"): 15}
_APP_LINK = re.compile(r'href="/orgs/acme/apps/(\d+)"')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">Older apps</a>')


@pytest.fixture
def apps(client: Any, kernel: Kernel, world: World) -> dict[tuple[str, str], list[int]]:
    """The apps of ``LAYOUT``, made through the models (the API would take minutes for
    this many); their ids by (project, environment), in creation order."""
    owner = world.a.sessions["owner"]
    for method, path, body in (
        ("POST", f"{API}/projects", {"name": "shop"}),
        ("POST", f"{API}/projects/shop/environments", {"name": "staging"}),
        ("POST", f"{API}/projects", {"name": "blog"}),
    ):
        r = client.request(method, path, json=body, headers=owner)
        assert r.status_code == 201, r.text
    made: dict[tuple[str, str], list[int]] = {}
    with kernel.db.transaction() as db:
        for (project, environment), count in LAYOUT.items():
            env = db.scalars(
                select(Environment.id)
                .join(Project, Project.id == Environment.project_id)
                .where(
                    Project.org_id == world.a.org.id,
                    Project.name == project,
                    Environment.name == environment,
                )
            ).one()
            rows = [
                App(
                    org_id=world.a.org.id,
                    environment_id=env,
                    name=f"{project}-{environment}-{i:03d}",
                    source_type="image",
                    image="nginx:1.27-alpine",
                    port=80,
                )
                for i in range(count)
            ]
            db.add_all(rows)
            db.flush()
            made[(project, environment)] = [a.id for a in rows]
    return made


def app_ids(html: str) -> list[int]:
    return [int(m) for m in _APP_LINK.findall(html)]


def walk(c: Any, url: str) -> list[list[int]]:
    """Follow the "Older apps" links from ``url``: the app ids of each page."""
    pages: list[list[int]] = []
    while url:
        r = c.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-security-policy"] == CSP
        pages.append(app_ids(r.text))
        found = _NEXT.search(r.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        assert len(pages) < 10, "the pages never end"
    return pages


def test_the_overview_pages_through_every_app(
    app: Any, apps: dict[tuple[str, str], list[int]], world: World
) -> None:
    c = as_session(app, world.a.sessions["viewer"])
    pages = walk(c, "/orgs/acme")
    # The API's pages: the newest 200, then the rest; every app once.
    assert [len(p) for p in pages] == [200, 25]
    everything = [i for ids in apps.values() for i in ids]
    seen = [i for p in pages for i in p]
    assert sorted(seen) == sorted(everything) and len(set(seen)) == len(seen)

    first = c.get("/orgs/acme").text
    assert 'class="app-filters"' in first  # a long list gets the filter form
    assert "Newest apps" not in first
    # The second page holds only the oldest apps (shop/production): the other
    # environments are not said to be empty, only to have nothing on this page.
    second = c.get(_NEXT.search(first).group(1).replace("&amp;", "&")).text  # type: ignore[union-attr]
    assert "No app of staging on this page." in second
    assert "No app in staging yet" not in second
    assert '<a href="/orgs/acme">Newest apps</a>' in second


def test_the_overview_filters_with_the_api(
    app: Any, apps: dict[tuple[str, str], list[int]], world: World
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    r = c.get("/orgs/acme?project=blog")
    assert r.status_code == 200
    assert sorted(app_ids(r.text)) == sorted(apps[("blog", "production")])
    assert 'id="project-blog"' in r.text and 'id="project-shop"' not in r.text
    assert '<option value="blog" selected>' in r.text
    assert 'data-testid="app-pages"' not in r.text  # one page holds them all

    pages = walk(c, "/orgs/acme?project=shop&environment=staging")
    assert [sorted(p) for p in pages] == [sorted(apps[("shop", "staging")])]

    # shop alone is longer than a page: the next link keeps the filter.
    pages = walk(c, "/orgs/acme?project=shop")
    assert [len(p) for p in pages] == [200, 10]
    assert set(pages[0] + pages[1]) == set(apps[("shop", "production")] + apps[("shop", "staging")])

    r = c.get("/orgs/acme?project=nope")
    assert r.status_code == 200
    assert app_ids(r.text) == [] and "Nothing matches" in r.text


def test_the_project_page_lists_its_apps_page_by_page(
    app: Any, apps: dict[tuple[str, str], list[int]], world: World
) -> None:
    c = as_session(app, world.a.sessions["developer"])
    pages = walk(c, "/orgs/acme/projects/shop")
    assert [len(p) for p in pages] == [200, 10]
    assert sorted(pages[0] + pages[1]) == sorted(
        apps[("shop", "production")] + apps[("shop", "staging")]
    )
    r = c.get("/orgs/acme/projects/shop?environment=staging")
    assert sorted(app_ids(r.text)) == sorted(apps[("shop", "staging")])
    assert '<option value="staging" selected>' in r.text

    # A short list: every app, no pages and no filter form.
    r = c.get("/orgs/acme/projects/blog")
    assert sorted(app_ids(r.text)) == sorted(apps[("blog", "production")])
    assert 'data-testid="app-pages"' not in r.text and 'class="app-filters"' not in r.text


def test_a_cursor_that_is_not_the_apis_is_its_422(
    app: Any, apps: dict[tuple[str, str], list[int]], world: World
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    for url in ("/orgs/acme?cursor=abc", "/orgs/acme/projects/shop?cursor=1;id"):
        r = c.get(url)
        assert r.status_code == 422, url
        assert "cursor" in text_of(r.text)


def test_another_organization_gets_no_page_of_apps(
    app: Any, apps: dict[tuple[str, str], list[int]], world: World
) -> None:
    outsider = as_session(app, world.b.sessions["owner"])
    for url in ("/orgs/acme?cursor=100", "/orgs/acme/projects/shop?environment=staging"):
        r = outsider.get(url)
        assert r.status_code == 404, url
        assert app_ids(r.text) == []


def test_every_project_and_environment_past_the_first_api_page(
    app: Any, kernel: Kernel, world: World
) -> None:
    """230 projects, and 205 environments in one: the overview's sections,
    the new-app form and the project page list them all, not the API's first page of
    200 (the newest, so the oldest would go missing)."""
    from gakwaya.deploy.projects import create_project

    with kernel.db.transaction() as db:
        for i in range(230):
            create_project(db, org_id=world.a.org.id, name=f"p-{i:03d}")
        big = db.scalars(
            select(Project.id).where(Project.org_id == world.a.org.id, Project.name == "p-000")
        ).one()
        db.add_all(
            Environment(org_id=world.a.org.id, project_id=big, name=f"e-{i:03d}")
            for i in range(204)
        )
    c = as_session(app, world.a.sessions["owner"])
    overview = c.get("/orgs/acme")
    assert overview.status_code == 200, overview.text
    for name in ("p-000", "p-229"):
        assert f'<a href="/orgs/acme/projects/{name}">{name}</a>' in overview.text
    form = c.get("/orgs/acme/apps/new")
    assert form.status_code == 200, form.text
    assert sum(1 for _ in re.finditer(r'<option value="p-\d{3}/', form.text)) == 230 + 204
    for choice in ("p-000/production", "p-000/e-203", "p-229/production"):
        assert f'value="{choice}"' in form.text
    project = c.get("/orgs/acme/projects/p-000")
    assert project.status_code == 200, project.text
    for env in ("production", "e-000", "e-203"):
        assert env in text_of(project.text)
