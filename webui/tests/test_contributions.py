"""What plugins add to the dashboard: the example plugin's page and nav entry, and a
probe plugin using every hook (pages, forms, nav, actions, cards), seen through a
signed-in browser-like client on a real kernel (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ui_probe_plugin
from litestar import Litestar, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.testing import TestClient
from webui_testlib import browser, csrf_of, sign_in, text_of

from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel
from gakwaya_webui import contributions
from tests.conftest import World, make_user

HELLO_SRC = Path(__file__).resolve().parents[2] / "examples" / "hello-plugin" / "src"
if str(HELLO_SRC) not in sys.path:
    sys.path.insert(0, str(HELLO_SRC))


@get("/api/v1/probe-slots", operation_id="probe_slots_show", opt={"public": True})
async def probe_slots(
    request: Request[Any, Any, Any],
    panel: NamedDependency[Panel],
    org: FromQuery[str],
    role: FromQuery[str],
) -> dict[str, Any]:
    """What the app and organization pages get from ``contributions`` for ``role``."""
    cards = await contributions.app_cards(request, org=org, app_id=7, role=role)
    return {
        "app_actions": contributions.app_actions(request, org=org, app_id=7, role=role),
        "org_actions": contributions.org_actions(request, org=org, role=role),
        "cards": [{**c, "body": str(c["body"])} for c in cards],
    }


class SlotsRoute:
    MANIFEST = {"name": "gakwaya-probe-slots", "version": "1.0", "core_api": ">=0.1,<0.2"}

    @hookimpl
    def register_routes(self) -> list[Any]:
        return [probe_slots]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"plugin_modules": ["gakwaya_hello.plugin", "ui_probe_plugin"]}


@pytest.fixture
def kernel(settings: Settings) -> Iterator[Kernel]:
    # The hello plugin's table comes from its own migration branch.
    k = Kernel.create(settings, extra_plugins=[("gakwaya-probe-slots", SlotsRoute())])
    k.migrate()
    yield k
    k.close()


@pytest.fixture
def web(app: Litestar, client: Any) -> TestClient[Litestar]:
    return browser(app)


def test_the_example_plugin_adds_a_page_and_a_nav_entry(
    web: TestClient[Litestar], world: World, kernel: Kernel
) -> None:
    assert kernel.plugins.statuses["gakwaya-hello"].status == "active"
    assert kernel.plugins.statuses["gakwaya-probe"].status == "active"
    sign_in(web, "viewer@acme.example.com")
    r = web.get("/orgs/acme")
    nav = '<a href="/p/hello/orgs/acme">Hello</a>'
    assert r.status_code == 200, r.text
    assert nav in r.text
    r = web.get("/p/hello/orgs/acme")
    assert r.status_code == 200, r.text
    text = text_of(r.text)
    assert "Hello, Acme!" in text
    assert "members welcomed in acme" in text
    assert "Added by the plugin gakwaya-hello" in text
    # In the organization's navigation, marked as the current page.
    assert '<a href="/p/hello/orgs/acme" aria-current="page">Hello</a>' in r.text
    # The viewer's role does not hold probe.manage (admin): its entry is hidden.
    assert "Probe rename" not in r.text
    assert "Probe docs" in r.text and "Probe admin" not in r.text


def test_contributed_pages_follow_the_api_rules(
    app: Litestar, web: TestClient[Litestar], world: World, kernel: Kernel
) -> None:
    # Anonymous: to the sign-in page, coming back here afterwards.
    r = web.get("/p/hello/orgs/acme")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/p/hello/orgs/acme"
    # Another organization's member: the API's 404, nothing of acme shown.
    sign_in(web, "owner@globex.example.com")
    r = web.get("/p/hello/orgs/acme")
    assert r.status_code == 404
    assert "Acme" not in r.text
    r = web.get("/p/hello/orgs/globex")
    assert r.status_code == 200 and "Hello, Globex!" in text_of(r.text)
    # No such page.
    assert web.get("/p/hello/nothing").status_code == 404
    # A page for a role the user lacks: 403 and the reason.
    dev = browser(app)
    sign_in(dev, "developer@acme.example.com")
    r = dev.get("/p/probe/orgs/acme/rename")
    assert r.status_code == 403
    assert "does not hold probe.manage" in text_of(r.text)
    # Superuser pages.
    assert dev.get("/p/probe/admin").status_code == 403
    make_user(kernel, "root@example.com", superuser=True)
    root = browser(app)
    sign_in(root, "root@example.com")
    r = root.get("/p/probe/admin")
    assert r.status_code == 200
    assert "&lt;b&gt;" in r.text  # plain text is escaped
    assert "Probe admin" in r.text


def test_a_template_page_reads_the_api_as_the_user(web: TestClient[Litestar], world: World) -> None:
    sign_in(web, "developer@acme.example.com")
    r = web.get("/p/probe/orgs/acme/members")
    assert r.status_code == 200, r.text
    assert 'data-testid="probe-members"' in r.text
    assert "owner@acme.example.com" in r.text
    assert "globex" not in r.text


def test_a_failing_page_is_contained_and_named(web: TestClient[Litestar], world: World) -> None:
    sign_in(web, "viewer@acme.example.com")
    r = web.get("/p/probe/boom")
    assert r.status_code == 500
    assert "plugin gakwaya-probe failed to draw this page" in text_of(r.text)
    assert "probe exploded" not in r.text  # the log has it, not the browser
    assert web.get("/").status_code == 200


def test_a_contributed_form_asks_then_goes_through_the_api(
    web: TestClient[Litestar], world: World, kernel: Kernel
) -> None:
    ui_probe_plugin.submitted.clear()
    sign_in(web, "admin@acme.example.com")
    # The organization's page offers the plugin's action, as a form that asks first.
    r = web.get("/orgs/acme")
    assert r.status_code == 200, r.text
    assert (
        '<form method="post" action="/p/probe/orgs/acme/rename" class="inline"'
        ' data-confirm="Rename this organization?">'
    ) in r.text
    r = web.get("/p/probe/orgs/acme/rename")
    assert r.status_code == 200
    assert "<b>it</b>" in r.text  # HTML-safe content is kept
    assert '<a href="/p/probe/orgs/acme/rename" aria-current' in r.text or (
        "Probe rename" in r.text
    )
    token = csrf_of(r.text)
    # The action has a confirm text: without JavaScript, a confirmation page first.
    r = web.post("/p/probe/orgs/acme/rename", data={"csrf_token": token, "name": "Acme Two"})
    assert r.status_code == 200
    assert "Rename this organization?" in text_of(r.text)
    assert ui_probe_plugin.submitted == []
    # A wrong token: the API refuses it and the page says so; nothing changed.
    r = web.post(
        "/p/probe/orgs/acme/rename",
        data={"csrf_token": "forged", "name": "Evil", "confirmed": "yes"},
    )
    assert r.status_code == 403
    assert "Error:" in text_of(r.text)
    r = web.post(
        "/p/probe/orgs/acme/rename",
        data={"csrf_token": token, "name": "Acme Two", "confirmed": "yes"},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/orgs/acme"
    assert ui_probe_plugin.submitted[-1] == {"name": "Acme Two"}
    with kernel.db.session() as db:
        from gakwaya.db.models import Organization

        assert db.query(Organization).filter_by(slug="acme").one().name == "Acme Two"
    # The API's validation message is shown on the page.
    r = web.post(
        "/p/probe/orgs/acme/rename",
        data={"csrf_token": token, "name": "bad\nname", "confirmed": "yes"},
    )
    assert r.status_code in (400, 422)
    assert "name" in text_of(r.text)


def test_actions_and_cards_for_the_app_and_org_pages(
    client: TestClient[Litestar], world: World
) -> None:
    admin = client.get("/api/v1/probe-slots", params={"org": "acme", "role": "admin"}).json()
    assert [a["label"] for a in admin["org_actions"]] == ["Rename via probe"]
    action = admin["org_actions"][0]
    assert action == {
        "label": "Rename via probe",
        "href": "/p/probe/orgs/acme/rename",
        "method": "POST",
        "confirm": "Rename this organization?",
        "plugin": "gakwaya-probe",
    }
    assert [a["href"] for a in admin["app_actions"]] == ["/p/probe/orgs/acme/apps/7"]
    titles = [c["title"] for c in admin["cards"]]
    assert titles == ["Broken card", "Probe card", "Admins only"]
    broken, probe, _ = admin["cards"]
    assert broken["body"] == "" and "gakwaya-probe" in broken["error"]
    assert probe["body"] == "&lt;app 7&gt;" and probe["error"] is None
    viewer = client.get("/api/v1/probe-slots", params={"org": "acme", "role": "viewer"}).json()
    assert viewer["org_actions"] == []
    assert [c["title"] for c in viewer["cards"]] == ["Broken card", "Probe card"]
    nobody = client.get("/api/v1/probe-slots", params={"org": "acme", "role": "stranger"}).json()
    assert nobody == {"app_actions": [], "org_actions": [], "cards": []}
