"""Forms that change what already exists: a project's description (projects_update)
and a domain's limits and redirects (domains_update). For each: saved, the API's
refusal shown beside the field it names with what was typed kept, a viewer offered
no form and refused by the API, another organization's a 404; nothing written when
the API refuses."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import select
from webui_testlib import CSP, as_session, form, make_app, text_of

from gakwaya.db.models import AuditRecord
from gakwaya.kernel import Kernel
from tests.conftest import World

API = "/api/v1/orgs/acme"
PROJECT_PAGE = "/orgs/acme/projects/shop"


def audit_actions(kernel: Kernel) -> list[str]:
    with kernel.db.session() as db:
        return list(db.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


def field_error(body: str, element_id: str) -> str:
    """The message shown beside the field whose ids are made of ``element_id``."""
    pattern = rf'<small id="e-{re.escape(element_id)}" class="field-error">([^<]*)</small>'
    m = re.search(pattern, body)
    assert m, f"no error beside {element_id}: {text_of(body)[:2000]}"
    assert f'aria-describedby="e-{element_id}"' in body
    return html.unescape(m.group(1))


# A project's description -------------------------------------------------------------------


@pytest.fixture
def project(client: Any, world: World) -> dict[str, Any]:
    r = client.post(
        f"{API}/projects",
        json={"name": "shop", "description": "The shop"},
        headers=world.a.sessions["owner"],
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def description(client: Any, world: World) -> str:
    r = client.get(f"{API}/projects/shop", headers=world.a.sessions["owner"])
    assert r.status_code == 200, r.text
    return str(r.json()["description"])


def test_project_description_is_saved(
    app: Any, client: Any, kernel: Kernel, world: World, project: dict[str, Any]
) -> None:
    c = as_session(app, world.a.sessions["developer"])
    r = c.get(PROJECT_PAGE)
    assert r.status_code == 200
    assert f'action="{PROJECT_PAGE}"' in r.text
    assert 'id="f-description"' in r.text and 'value="The shop"' in r.text
    before = audit_actions(kernel)
    r = form(c, PROJECT_PAGE, {"description": "  Storefront & checkout <b>  "})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == PROJECT_PAGE
    assert audit_actions(kernel)[len(before) :] == ["projects_update"]
    assert description(client, world) == "Storefront & checkout <b>"
    r = c.get(PROJECT_PAGE)
    assert r.headers["content-security-policy"] == CSP
    assert "Description saved." in r.text
    assert "Storefront &amp; checkout &lt;b&gt;" in r.text and "<b>" not in r.text
    # The overview shows it too; emptied, it is gone.
    assert "Storefront &amp; checkout" in c.get("/orgs/acme").text
    assert form(c, PROJECT_PAGE, {"description": ""}).status_code == 303
    assert description(client, world) == ""


@pytest.mark.parametrize("bad", ["line one\nline two", "tab\there", "x" * 501])
def test_project_description_refused_beside_the_field(
    app: Any, client: Any, kernel: Kernel, world: World, project: dict[str, Any], bad: str
) -> None:
    c = as_session(app, world.a.sessions["owner"])
    r = form(c, PROJECT_PAGE, {"description": bad})
    assert r.status_code in (400, 422), r.text
    message = field_error(r.text, "description")
    assert "500 characters" in message and "control characters" in message
    assert 'aria-invalid="true"' in r.text
    # What was typed comes back in the field, and nothing else is flagged.
    assert f'value="{bad[:20]}' in r.text.replace("&#34;", '"')
    assert 'id="e-name"' not in r.text
    assert description(client, world) == "The shop"


def test_viewer_is_offered_no_description_form_and_refused(
    app: Any, client: Any, kernel: Kernel, world: World, project: dict[str, Any]
) -> None:
    c = as_session(app, world.a.sessions["viewer"])
    r = c.get(PROJECT_PAGE)
    assert r.status_code == 200 and "The shop" in r.text
    assert f'action="{PROJECT_PAGE}"' not in r.text and 'id="f-description"' not in r.text
    r = form(c, PROJECT_PAGE, {"description": "mine now"})
    assert r.status_code == 403
    assert "your role &#39;viewer&#39; does not grant &#39;projects.write&#39;" in r.text
    assert description(client, world) == "The shop"
    assert audit_actions(kernel)[-1] == "projects_update"  # the API's refusal, audited


def test_another_organizations_project_is_not_found(
    app: Any, client: Any, kernel: Kernel, world: World, project: dict[str, Any]
) -> None:
    outsider = as_session(app, world.b.sessions["owner"])
    r = form(outsider, PROJECT_PAGE, {"description": "stolen"})
    assert r.status_code == 404
    assert r.headers["content-security-policy"] == CSP
    assert description(client, world) == "The shop"
    # Under their own organization the name is just as unknown.
    assert form(outsider, "/orgs/globex/projects/shop", {"description": "x"}).status_code == 404
    insider = as_session(app, world.a.sessions["owner"])
    for name in ("absent", "a%20b"):
        r = form(insider, f"/orgs/acme/projects/{name}", {"description": "x"})
        assert r.status_code == 404, name


# A domain's options ------------------------------------------------------------------------


def make_image_app(client: Any, world: World, name: str = "web") -> int:
    made = make_app(client, world, name, source_type="image", image="gakwaya-test/absent:1")
    return int(made["id"])


@pytest.fixture
def domain(client: Any, world: World) -> dict[str, Any]:
    """shop.example.com of the app ``web`` (pending: not verified)."""
    app_id = make_image_app(client, world)
    r = client.post(
        f"{API}/apps/{app_id}/domains",
        json={"name": "shop.example.com"},
        headers=world.a.sessions["owner"],
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def shown(client: Any, world: World, domain_id: int) -> dict[str, Any]:
    r = client.get(f"{API}/domains/{domain_id}", headers=world.a.sessions["owner"])
    assert r.status_code == 200, r.text
    body = dict(r.json())
    return {k: body[k] for k in ("https_redirect", "redirect", "max_body_mb", "timeout_seconds")}


def test_domain_options_are_saved(
    app: Any, client: Any, kernel: Kernel, world: World, domain: dict[str, Any]
) -> None:
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{domain['app_id']}"
    url = f"{base}/domains/{domain['id']}/settings"
    r = c.get(f"{base}/domains")
    assert r.status_code == 200
    assert f'action="{url}"' in r.text
    fid = f"d{domain['id']}-"
    for name in ("max_body_mb", "timeout_seconds", "redirect"):
        assert f'id="f-{fid}{name}"' in r.text and f'for="f-{fid}{name}"' in r.text
    assert "request body not limited" in text_of(r.text)
    before = audit_actions(kernel)
    data = {"max_body_mb": "50", "timeout_seconds": "90.5", "redirect": "none"}
    r = form(c, url, data)  # https_redirect unticked
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{base}/domains#domain-{domain['id']}"
    assert audit_actions(kernel)[len(before) :] == ["domains_update"]
    assert shown(client, world, domain["id"]) == {
        "https_redirect": False,
        "redirect": "none",
        "max_body_mb": 50,
        "timeout_seconds": 90.5,
    }
    page = c.get(f"{base}/domains")
    assert "Options of shop.example.com saved." in page.text
    facts = text_of(page.text)
    assert "request body up to 50 MiB · timeout 90.5 s" in facts
    assert "no HTTPS redirect" in facts
    # The form holds the saved values, as typed (not 50.0).
    assert f'id="f-{fid}max_body_mb" name="max_body_mb" type="number" value="50"' in page.text
    assert f'id="f-{fid}timeout_seconds" name="timeout_seconds" type="text" value="90.5"' in (
        page.text
    )
    # Emptied: no limit again (null), and the HTTPS redirect back on.
    data = {"max_body_mb": "", "timeout_seconds": "", "https_redirect": "on", "redirect": "none"}
    assert form(c, url, data).status_code == 303
    assert shown(client, world, domain["id"]) == {
        "https_redirect": True,
        "redirect": "none",
        "max_body_mb": None,
        "timeout_seconds": None,
    }


@pytest.mark.parametrize(
    ("name", "bad", "rule"),
    [
        ("max_body_mb", "-1", "max_body_mb: expected `int` >= 1"),
        ("max_body_mb", "10241", "max_body_mb: expected `int` <= 10240"),
        ("max_body_mb", "lots", "max_body_mb"),
        ("timeout_seconds", "0", "timeout_seconds: expected `float` >= 1"),
        ("timeout_seconds", "99999", "timeout_seconds: expected `float` <= 3600"),
        ("redirect", "elsewhere", "www_to_apex"),
    ],
)
def test_domain_option_out_of_range_is_shown_beside_the_field(
    app: Any,
    client: Any,
    kernel: Kernel,
    world: World,
    domain: dict[str, Any],
    name: str,
    bad: str,
    rule: str,
) -> None:
    c = as_session(app, world.a.sessions["developer"])
    base = f"/orgs/acme/apps/{domain['app_id']}"
    before = shown(client, world, domain["id"])
    data = {"max_body_mb": "20", "timeout_seconds": "30", "redirect": "none", name: bad}
    r = form(c, f"{base}/domains/{domain['id']}/settings", data)
    assert r.status_code in (400, 422), r.text
    fid = f"d{domain['id']}-"
    assert rule in field_error(r.text, f"{fid}{name}")
    # That domain's form is open, with what was typed; the "add" form is not flagged.
    assert re.search(r'<details class="domain-options" open>', r.text)
    if name != "redirect":
        assert f'id="f-{fid}{name}" name="{name}"' in r.text and f'value="{bad}"' in r.text
    assert 'id="e-name"' not in r.text and 'id="e-redirect"' not in r.text
    assert shown(client, world, domain["id"]) == before


def test_viewer_is_offered_no_domain_options_form_and_refused(
    app: Any, client: Any, kernel: Kernel, world: World, domain: dict[str, Any]
) -> None:
    c = as_session(app, world.a.sessions["viewer"])
    base = f"/orgs/acme/apps/{domain['app_id']}"
    url = f"{base}/domains/{domain['id']}/settings"
    r = c.get(f"{base}/domains")
    assert r.status_code == 200 and "shop.example.com" in r.text
    assert f'action="{url}"' not in r.text and 'name="max_body_mb"' not in r.text
    assert "request body not limited" in text_of(r.text)  # the values, read-only
    before = shown(client, world, domain["id"])
    r = form(c, url, {"max_body_mb": "1", "redirect": "none"})
    assert r.status_code == 403
    assert "does not grant &#39;domains.write&#39;" in r.text
    assert shown(client, world, domain["id"]) == before


def test_another_organizations_domain_is_not_found(
    app: Any, client: Any, kernel: Kernel, world: World, domain: dict[str, Any]
) -> None:
    before = shown(client, world, domain["id"])
    outsider = as_session(app, world.b.sessions["owner"])
    data = {"max_body_mb": "1", "timeout_seconds": "1", "redirect": "none"}
    url = f"/orgs/acme/apps/{domain['app_id']}/domains/{domain['id']}/settings"
    r = form(outsider, url, data)
    assert r.status_code == 404
    assert r.headers["content-security-policy"] == CSP
    r = form(outsider, url.replace("/orgs/acme/", "/orgs/globex/"), data)
    assert r.status_code == 404
    # Another app's domain under this app's URL is not found either.
    other = make_image_app(client, world, name="other")
    insider = as_session(app, world.a.sessions["owner"])
    r = form(insider, f"/orgs/acme/apps/{other}/domains/{domain['id']}/settings", data)
    assert r.status_code == 404
    assert shown(client, world, domain["id"]) == before
