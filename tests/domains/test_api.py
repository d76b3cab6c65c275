"""Domains through the API: records to create, TXT verification against a real DNS
server (challtestsrv), claims across organizations, the name rules, options, roles,
and what the proxies are given."""

from __future__ import annotations

import uuid
from typing import Any

import idna
import pytest
from sqlalchemy import select

from gakwaya.db.models import AuditRecord, Domain
from gakwaya.domains.schemas import REDIRECT_RULE
from gakwaya_sdk.domains import DOMAIN_RULE, WILDCARD_RULE
from gakwaya_sdk.providers import CertificateStatus
from tests.deploy.app_helpers import assert_invalid
from tests.domains.conftest import BASE, IPV4
from tests.domains.helpers import API, OTHER, app_with_project, domain_rows, domains_url, run_app
from tests.orgs.helpers import events_of


def unique(label: str = "shop", parent: str = "example.com") -> str:
    """A name no other test uses (challtestsrv is shared by the session)."""
    return f"{label}-{uuid.uuid4().hex[:8]}.{parent}"


@pytest.fixture
def web(client: Any, world: Any) -> Any:
    return app_with_project(client, world.a.sessions["developer"])


def add(client: Any, app: Any, headers: dict[str, str], name: str, **extra: Any) -> Any:
    return client.post(domains_url(app["id"]), json={"name": name, **extra}, headers=headers)


def added(client: Any, app: Any, headers: dict[str, str], name: str, **extra: Any) -> Any:
    r = add(client, app, headers, name, **extra)
    assert r.status_code == 201, r.text
    return r.json()


def verify(client: Any, domain: Any, headers: dict[str, str]) -> Any:
    return client.post(f"{API}/domains/{domain['id']}/verify", headers=headers)


def prove(challtestsrv: Any, domain: Any) -> None:
    challtestsrv.set_txt(domain["verification"]["record"], domain["verification"]["value"])


def test_add_returns_the_records_and_stays_pending(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    name = unique()
    body = added(client, web, dev, name.upper(), max_body_mb=20, timeout_seconds=90)
    assert body["name"] == name and body["display_name"] == name
    assert (body["kind"], body["active"], body["app_id"]) == ("custom", False, web["id"])
    assert (body["https_redirect"], body["redirect"], body["redirect_from"]) == (True, "none", [])
    assert (body["max_body_mb"], body["timeout_seconds"]) == (20, 90)
    token = body["verification"]["value"]
    assert len(token) == 32 and body["verification"]["verified_at"] is None
    assert body["dns_records"] == [
        {"type": "A", "name": name, "value": IPV4, "purpose": "routing"},
        {
            "type": "TXT",
            "name": f"_gakwaya-challenge.{name}",
            "value": token,
            "purpose": "verification",
        },
    ]
    assert body["certificate"]["state"] == "pending"
    assert events_of(kernel, "domain.added")[-1]["name"] == name
    with kernel.db.session() as db:
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "domains_create")).one()
        row = db.get(Domain, body["id"])
    assert (audit.target_type, audit.target_id, audit.outcome) == (
        "domain",
        str(body["id"]),
        "success",
    )
    assert row is not None and row.org_id == world.a.org.id and row.verified_at is None

    listed = client.get(domains_url(web["id"]), headers=world.a.sessions["viewer"])
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(d["name"], d["kind"], d["active"]) for d in items] == [
        (name, "custom", False),
        (f"web-production.{BASE}", "default", True),
    ]
    assert items[1]["dns_records"] == [] and items[1]["verification"] is None
    shown = client.get(f"{API}/domains/{body['id']}", headers=world.a.keys["read"])
    assert shown.status_code == 200 and shown.json()["dns_records"] == body["dns_records"]


@pytest.mark.parametrize("extra_settings", [{"server_ipv4": "", "server_ipv6": ""}])
def test_without_server_addresses_a_cname_to_the_default_domain(client, world, web):
    name = "www." + unique()
    body = added(client, web, world.a.sessions["developer"], name, redirect="apex_to_www")
    apex = name.removeprefix("www.")
    assert body["redirect_from"] == [apex]
    assert [(r["type"], r["name"], r["value"]) for r in body["dns_records"]] == [
        ("CNAME", name, f"web-production.{BASE}"),
        ("CNAME", apex, f"web-production.{BASE}"),
        ("TXT", f"_gakwaya-challenge.{name}", body["verification"]["value"]),
    ]


@pytest.mark.parametrize("extra_settings", [{"server_ipv6": "2001:db8::10"}])
def test_a_and_aaaa_records(client, world, web):
    body = added(client, web, world.a.sessions["developer"], unique(), redirect="www_to_apex")
    routing = [(r["type"], r["name"]) for r in body["dns_records"] if r["purpose"] == "routing"]
    name = body["name"]
    assert routing == [("A", name), ("AAAA", name), ("A", f"www.{name}"), ("AAAA", f"www.{name}")]


def test_verify_against_dns(client, kernel, world, web, doubles, challtestsrv):
    dev = world.a.sessions["developer"]
    run_app(kernel, doubles, web["id"], "127.0.0.1:41001", "127.0.0.1:41002")
    domain = added(client, web, dev, unique(), redirect="www_to_apex", max_body_mb=5)
    record = domain["verification"]["record"]

    # No record yet: 409 naming what was asked where, and what was seen.
    r = verify(client, domain, dev)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert record in detail and challtestsrv.dns_address in detail
    assert domain["verification"]["value"] in detail
    shown = client.get(f"{API}/domains/{domain['id']}", headers=dev).json()
    assert shown["active"] is False and shown["verification"]["error"]
    assert shown["verification"]["checked_at"] is not None

    # A wrong value: still 409, quoting it.
    challtestsrv.set_txt(record, "not-the-token")
    try:
        r = verify(client, domain, dev)
        assert r.status_code == 409 and "not-the-token" in r.json()["detail"]
        assert events_of(kernel, "domain.verified") == []

        prove(challtestsrv, domain)
        r = verify(client, domain, dev)
        assert r.status_code == 200, r.text
    finally:
        challtestsrv.clear_txt(record)
    body = r.json()
    assert body["active"] is True and body["verification"]["verified_at"] is not None
    assert body["routes_error"] == ""
    verified = events_of(kernel, "domain.verified")
    assert [(e["domain_id"], e["name"]) for e in verified] == [(domain["id"], domain["name"])]
    # The proxy serves it now, with the options; the default domain too.
    routes = {r.domain: r for r in doubles.proxy.routes()}
    assert sorted(routes) == sorted([domain["name"], f"web-production.{BASE}"])
    route = routes[domain["name"]]
    assert sorted(route.upstreams) == ["127.0.0.1:41001", "127.0.0.1:41002"]
    assert list(route.redirect_from) == [f"www.{domain['name']}"]
    assert route.max_body_bytes == 5 * 1024 * 1024 and route.tls is True
    # Verifying again changes nothing and sends nothing.
    r = verify(client, domain, dev)
    assert r.status_code == 200 and len(events_of(kernel, "domain.verified")) == 1
    with kernel.db.session() as db:
        outcomes = [
            a.outcome
            for a in db.scalars(
                select(AuditRecord)
                .where(AuditRecord.action == "domains_verify")
                .order_by(AuditRecord.id)
            )
        ]
    assert outcomes == ["failure", "failure", "success", "success"]


def test_claims_across_organizations(client, kernel, world, web, challtestsrv):
    a_dev, b_dev = world.a.sessions["developer"], world.b.sessions["developer"]
    b_project = client.post(f"{OTHER}/projects", json={"name": "shop"}, headers=b_dev)
    assert b_project.status_code == 201, b_project.text
    b_app = client.post(
        f"{OTHER}/apps",
        json={
            "project": "shop",
            "environment": "production",
            "name": "site",
            "image": "x:1",
            "source_type": "image",
        },
        headers=b_dev,
    ).json()
    b_url = f"{OTHER}/apps/{b_app['id']}/domains"

    # Both may add a name nobody proved; the first to prove it wins.
    name = unique("race")
    mine = added(client, web, a_dev, name)
    theirs = client.post(b_url, json={"name": name}, headers=b_dev)
    assert theirs.status_code == 201, theirs.text
    theirs = theirs.json()
    assert theirs["verification"]["value"] != mine["verification"]["value"]
    record = mine["verification"]["record"]
    challtestsrv.set_txt(record, theirs["verification"]["value"])
    challtestsrv.add_txt(record, mine["verification"]["value"])
    try:
        r = client.post(f"{OTHER}/domains/{theirs['id']}/verify", headers=b_dev)
        assert r.status_code == 200, r.text
        # The record holds acme's token too, but globex proved the name first.
        r = verify(client, mine, a_dev)
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0] == {
            "field": "name",
            "rule": "already claimed by another organization",
            "message": "name: already claimed by another organization",
        }
    finally:
        challtestsrv.clear_txt(record)
    with kernel.db.session() as db:
        assert db.get(Domain, mine["id"]).verified_at is None

    # Once proven, nobody else can even add it, nor its redirect's name.
    before = domain_rows(kernel)
    r = add(client, web, a_dev, name)
    assert r.status_code == 409 and r.json()["detail"] == (
        "name: already claimed by another organization"
    )
    r = client.patch(
        f"{OTHER}/domains/{theirs['id']}", json={"redirect": "www_to_apex"}, headers=b_dev
    )
    assert r.status_code == 200, r.text
    r = add(client, web, a_dev, f"www.{name}")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    r = add(client, web, a_dev, f"www.{name}", redirect="apex_to_www")
    assert r.status_code == 409 and "another organization" in r.text
    other = unique("apex")
    r = add(client, web, a_dev, f"www.{other}", redirect="apex_to_www")
    assert r.status_code == 201
    assert domain_rows(kernel) == before + 1


def test_a_name_once_per_organization(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    name = unique()
    first = added(client, web, dev, name)
    second_app = app_with_project(client, dev, "api")
    before = domain_rows(kernel)
    r = add(client, second_app, dev, name.upper())
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["field"] == "name" and str(first["id"]) in r.text
    # A redirect answering a name this organization has is refused too.
    r = add(client, second_app, dev, f"www.{name}", redirect="apex_to_www")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "redirect"
    assert domain_rows(kernel) == before


BAD_NAMES = [
    "a;b.example.com",
    "$(id).example.com",
    "`id`.example.com",
    "a..example.com",
    "-a.example.com",
    "a.example.com\n",
    "\na.example.com",
    "a b.example.com",
    "example.com/path",
    "example.com:80",
    "127.0.0.1",
    "[::1]",
    "../etc",
    "localhost",
    "",
    "a" * 64 + ".example.com",
    ("a" * 60 + ".") * 5 + "com",
    "a.example.com'",
    'a.example.com"',
    "a.example.com{",
]


@pytest.mark.edge_rule
@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_write_nothing(client, kernel, world, web, bad):
    before = domain_rows(kernel)
    r = add(client, web, world.a.sessions["developer"], bad)
    assert_invalid(r, "name", DOMAIN_RULE)
    assert domain_rows(kernel) == before


@pytest.mark.edge_rule
@pytest.mark.parametrize(
    "bad", ["none;", "$(id)", "`id`", "../x", "-none", "none\n", "www to apex", "www_to_apex/"]
)
def test_bad_redirects_write_nothing(client, kernel, world, web, bad):
    before = domain_rows(kernel)
    r = add(client, web, world.a.sessions["developer"], unique(), redirect=bad)
    assert_invalid(r, "redirect", REDIRECT_RULE)
    assert domain_rows(kernel) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_body_mb", 0),
        ("max_body_mb", 10241),
        ("timeout_seconds", 0.5),
        ("timeout_seconds", 3601),
        ("https_redirect", "yes"),
    ],
)
def test_bad_options(client, kernel, world, web, field, value):
    before = domain_rows(kernel)
    r = add(client, web, world.a.sessions["developer"], unique(), **{field: value})
    assert r.status_code in (400, 422) and field in r.text, r.text
    assert domain_rows(kernel) == before


def test_redirect_rules(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    before = domain_rows(kernel)
    r = add(client, web, dev, "www." + unique(), redirect="www_to_apex")
    assert_invalid(r, "redirect", "www_to_apex needs a name without 'www.'")
    r = add(client, web, dev, unique(), redirect="apex_to_www")
    assert_invalid(r, "redirect", "apex_to_www needs a name starting with 'www.'")
    r = add(client, web, dev, "www.com", redirect="apex_to_www")
    assert_invalid(r, "redirect", "the other name, com, would not be")
    assert domain_rows(kernel) == before


def test_international_names_are_stored_in_idna_form(client, kernel, world, web, challtestsrv):
    dev = world.a.sessions["developer"]
    label = uuid.uuid4().hex[:6]
    body = added(client, web, dev, f"Bücher-{label}.Example")
    assert body["name"] == idna.encode(f"bücher-{label}.example").decode()
    assert body["name"].startswith("xn--") and body["name"].isascii()
    assert body["display_name"] == f"bücher-{label}.example"
    assert body["verification"]["record"] == f"_gakwaya-challenge.{body['name']}"
    with kernel.db.session() as db:
        assert db.get(Domain, body["id"]).name == body["name"]
    # The same name typed either way is one name.
    r = add(client, web, dev, body["name"])
    assert r.status_code == 409, r.text
    prove(challtestsrv, body)
    try:
        r = verify(client, body, dev)
    finally:
        challtestsrv.clear_txt(body["verification"]["record"])
    assert r.status_code == 200 and r.json()["active"] is True


def test_wildcards_need_a_dns_provider(client, kernel, world, web):
    before = domain_rows(kernel)
    r = add(client, web, world.a.sessions["developer"], "*." + unique("wild"))
    assert_invalid(r, "name", WILDCARD_RULE)
    assert domain_rows(kernel) == before


@pytest.mark.parametrize("with_dns", [True])
def test_wildcards_with_a_dns_provider(client, kernel, world, web, doubles, challtestsrv):
    dev = world.a.sessions["developer"]
    parent = unique("wild")
    body = added(client, web, dev, f"*.{parent}")
    assert body["name"] == f"*.{parent}"
    assert body["verification"]["record"] == f"_gakwaya-challenge.{parent}"
    assert body["dns_records"][0] == {
        "type": "A",
        "name": f"*.{parent}",
        "value": IPV4,
        "purpose": "routing",
    }
    assert_invalid(add(client, web, dev, f"*.{unique()}", redirect="www_to_apex"), "redirect")
    assert_invalid(add(client, web, dev, f"*.*.{parent}"), "name", DOMAIN_RULE)
    run_app(kernel, doubles, web["id"])
    prove(challtestsrv, body)
    try:
        assert verify(client, body, dev).status_code == 200
    finally:
        challtestsrv.clear_txt(body["verification"]["record"])
    assert f"*.{parent}" in doubles.proxy.domains


@pytest.mark.parametrize("extra_settings", [{"panel_domain": "panel.example.test"}])
def test_reserved_names(client, kernel, world, web):
    dev = world.a.sessions["developer"]
    before = domain_rows(kernel)
    for name in (BASE, f"other-production.{BASE}", f"a.b.{BASE.upper()}"):
        assert_invalid(add(client, web, dev, name), "name", "default domains")
    r = add(client, web, dev, "panel.example.test")
    assert r.status_code == 409 and r.json()["errors"][0]["rule"] == "the panel's own domain"
    r = add(client, web, dev, "www.panel.example.test", redirect="apex_to_www")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "redirect"
    assert domain_rows(kernel) == before


def test_default_domain_rules(client, kernel, world, web):
    admin = world.a.sessions["admin"]
    items = client.get(domains_url(web["id"]), headers=admin).json()["items"]
    default = next(d for d in items if d["kind"] == "default")
    url = f"{API}/domains/{default['id']}"
    r = client.delete(url, headers=admin)
    assert r.status_code == 409 and "default domain" in r.json()["detail"]
    assert_invalid(client.patch(url, json={"name": "x.example.com"}, headers=admin), "name")
    assert_invalid(client.patch(url, json={"redirect": "www_to_apex"}, headers=admin), "redirect")
    r = client.patch(url, json={"https_redirect": False, "timeout_seconds": 30}, headers=admin)
    assert r.status_code == 200 and r.json()["timeout_seconds"] == 30
    r = client.post(f"{url}/verify", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is True
    # The same app name in another environment, and a taken name, get their own.
    r = client.post(f"{API}/projects/shop/environments", json={"name": "staging"}, headers=admin)
    assert r.status_code == 201
    staging = client.post(
        f"{API}/apps",
        json={
            "project": "shop",
            "environment": "staging",
            "name": "web",
            "image": "x:1",
            "source_type": "image",
        },
        headers=admin,
    ).json()
    names = [
        d["name"] for d in client.get(domains_url(staging["id"]), headers=admin).json()["items"]
    ]
    assert names == [f"web-staging.{BASE}"]
    # Another organization's web/production: the name is taken, the app's id is added.
    clash = client.post(
        f"{OTHER}/projects", json={"name": "shop"}, headers=world.b.sessions["admin"]
    )
    assert clash.status_code == 201
    other = client.post(
        f"{OTHER}/apps",
        json={
            "project": "shop",
            "environment": "production",
            "name": "web",
            "image": "x:1",
            "source_type": "image",
        },
        headers=world.b.sessions["admin"],
    ).json()
    got = client.get(f"{OTHER}/apps/{other['id']}/domains", headers=world.b.sessions["admin"])
    assert [d["name"] for d in got.json()["items"]] == [f"web-production-{other['id']}.{BASE}"]


def test_custom_domain_options_and_removal(client, kernel, world, web, doubles, challtestsrv):
    dev, admin = world.a.sessions["developer"], world.a.sessions["admin"]
    run_app(kernel, doubles, web["id"])
    domain = added(client, web, dev, unique())
    url = f"{API}/domains/{domain['id']}"
    assert_invalid(client.patch(url, json={"name": unique()}, headers=dev), "name", "never changes")
    r = client.patch(url, json={"name": domain["name"], "max_body_mb": 7}, headers=dev)
    assert r.status_code == 200 and r.json()["max_body_mb"] == 7
    prove(challtestsrv, domain)
    try:
        assert verify(client, domain, dev).status_code == 200
    finally:
        challtestsrv.clear_txt(domain["verification"]["record"])
    applied = len(doubles.proxy.applied)
    r = client.patch(
        url,
        json={"https_redirect": False, "max_body_mb": None, "timeout_seconds": 12.5},
        headers=dev,
    )
    assert r.status_code == 200, r.text
    assert events_of(kernel, "domain.updated")[-1]["fields"] == [
        "https_redirect",
        "max_body_mb",
        "timeout_seconds",
    ]
    assert len(doubles.proxy.applied) == applied + 1
    route = next(r for r in doubles.proxy.routes() if r.domain == domain["name"])
    assert (route.https_redirect, route.max_body_bytes, route.timeout) == (False, None, 12.5)
    # Nothing changed: no event, no apply.
    assert client.patch(url, json={"timeout_seconds": 12.5}, headers=dev).status_code == 200
    assert len(doubles.proxy.applied) == applied + 1

    assert client.delete(url, headers=dev).status_code == 403  # removing needs an admin
    r = client.delete(url, headers=admin)
    assert r.status_code == 204, r.text
    assert domain["name"] not in doubles.proxy.domains
    assert events_of(kernel, "domain.removed")[-1]["name"] == domain["name"]
    assert client.get(url, headers=admin).status_code == 404


@pytest.mark.parametrize("refusing_proxy", [True])
def test_a_refusing_proxy_is_reported_and_the_others_still_served(
    client, kernel, world, web, doubles, challtestsrv
):
    dev = world.a.sessions["developer"]
    run_app(kernel, doubles, web["id"])
    domain = added(client, web, dev, unique())
    prove(challtestsrv, domain)
    try:
        r = verify(client, domain, dev)
    finally:
        challtestsrv.clear_txt(domain["verification"]["record"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active"] is True
    assert body["routes_error"] == "the admin API refused the configuration: test"
    assert domain["name"] in doubles.proxy.domains


def test_live_certificate_state(client, kernel, world, web, doubles, challtestsrv):
    dev = world.a.sessions["developer"]
    domain = added(client, web, dev, unique())
    doubles.certs.states[domain["name"]] = CertificateStatus(
        domain=domain["name"], state="issued", issuer="CN=Test CA"
    )
    url = f"{API}/domains/{domain['id']}"
    # Pending domains are not asked about.
    assert client.get(url, headers=dev).json()["certificate"]["live"] is False
    prove(challtestsrv, domain)
    try:
        verify(client, domain, dev)
    finally:
        challtestsrv.clear_txt(domain["verification"]["record"])
    cert = client.get(url, headers=dev).json()["certificate"]
    assert (cert["state"], cert["issuer"], cert["live"]) == ("issued", "CN=Test CA", True)
    listed = client.get(domains_url(web["id"]), headers=dev).json()["items"]
    assert next(d for d in listed if d["id"] == domain["id"])["certificate"]["state"] == "pending"


@pytest.mark.parametrize("extra_settings", [{"domains_tls": False}])
def test_without_tls_no_certificate(client, world, web):
    body = added(client, web, world.a.sessions["developer"], unique())
    assert body["certificate"] is None


def test_roles_and_keys(client, kernel, world, web):
    viewer = world.a.sessions["viewer"]
    r = add(client, web, viewer, unique())
    assert r.status_code == 403 and "domains.write" in r.json()["detail"]
    assert add(client, web, world.a.keys["read"], unique()).status_code == 403
    domain = added(client, web, world.a.keys["write"], unique())
    url = f"{API}/domains/{domain['id']}"
    assert client.get(url, headers=viewer).status_code == 200
    assert client.get(domains_url(web["id"]), headers=world.a.keys["read"]).status_code == 200
    for key in ("read", "deploy"):
        h = world.a.keys[key]
        assert client.patch(url, json={"max_body_mb": 1}, headers=h).status_code == 403
        assert client.post(f"{url}/verify", headers=h).status_code == 403
        assert client.delete(url, headers=h).status_code == 403
    assert client.delete(url, headers=world.a.keys["write"]).status_code == 403
    assert client.delete(url, headers=world.a.keys["admin"]).status_code == 204


def test_another_organization_gets_404_everywhere(client, kernel, world, web):
    domain = added(client, web, world.a.sessions["developer"], unique())
    before = domain_rows(kernel)
    outsider = world.b.sessions["owner"]
    for base in (API, OTHER):
        list_url = f"{base}/apps/{web['id']}/domains"
        url = f"{base}/domains/{domain['id']}"
        assert client.get(list_url, headers=outsider).status_code == 404
        assert client.post(list_url, json={"name": unique()}, headers=outsider).status_code == 404
        assert client.get(url, headers=outsider).status_code == 404
        assert client.patch(url, json={"max_body_mb": 1}, headers=outsider).status_code == 404
        assert client.post(f"{url}/verify", headers=outsider).status_code == 404
        r = client.delete(url, headers=outsider)
        assert r.status_code == 404 and "Acme" not in r.text and domain["name"] not in r.text
    assert domain_rows(kernel) == before


def test_list_pages(client, world, web):
    dev = world.a.sessions["developer"]
    for _ in range(3):
        added(client, web, dev, unique())
    r = client.get(domains_url(web["id"]), params={"limit": 2}, headers=dev)
    first = r.json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    r = client.get(
        domains_url(web["id"]), params={"limit": 2, "cursor": first["next_cursor"]}, headers=dev
    )
    second = r.json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4


def test_deleting_the_app_deletes_its_domains(client, kernel, world, web):
    added(client, web, world.a.sessions["developer"], unique())
    assert domain_rows(kernel) == 2  # the custom one and the default one
    r = client.delete(f"{API}/apps/{web['id']}", headers=world.a.sessions["admin"])
    assert r.status_code == 204, r.text
    assert domain_rows(kernel) == 0
