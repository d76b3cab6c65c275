"""The example plugin, tested as its author would: with the ``gakwaya_*`` fixtures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from gakwaya_hello.tables import welcomes

HELLO = "/api/v1/orgs/{}/hello"
SETTINGS = "/api/v1/orgs/{}/plugins/gakwaya-hello/settings"


def test_loaded_with_its_manifest(gakwaya_kernel: Any) -> None:
    status = gakwaya_kernel.plugins.statuses["gakwaya-hello"]
    assert status.status == "active", status.reason
    assert status.version == "0.1.0"
    assert {"register_routes", "on_event", "register_migrations"} <= set(status.hooks)
    assert "hello.greet" in gakwaya_kernel.permissions


def test_greets_with_the_organization_setting(gakwaya_client: Any, gakwaya_org: Any) -> None:
    r = gakwaya_client.get(HELLO.format("acme"), headers=gakwaya_org.keys["read"])
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Hello, Acme!"
    r = gakwaya_client.put(
        SETTINGS.format("acme"),
        json={"values": {"greeting": "Bonjour"}},
        headers=gakwaya_org.sessions["admin"],
    )
    assert r.status_code == 200, r.text
    r = gakwaya_client.get(HELLO.format("acme"), headers=gakwaya_org.keys["read"])
    assert r.json()["message"] == "Bonjour, Acme!"
    # A wrong type is refused, naming the setting and the rule.
    r = gakwaya_client.put(
        SETTINGS.format("acme"),
        json={"values": {"greeting": 42}},
        headers=gakwaya_org.sessions["admin"],
    )
    assert r.status_code in (400, 422) and "values.greeting" in r.text


def test_another_organization_is_a_404(
    gakwaya_client: Any, gakwaya_org: Any, gakwaya_make_org: Callable[..., Any]
) -> None:
    globex = gakwaya_make_org("globex")
    r = gakwaya_client.get(HELLO.format("acme"), headers=globex.keys["read"])
    assert r.status_code == 404
    r = gakwaya_client.get(HELLO.format("acme"), headers=globex.sessions["owner"])
    assert r.status_code == 404
    r = gakwaya_client.get(HELLO.format("acme"))
    assert r.status_code == 401


def test_the_subscriber_welcomes_new_members_once(
    gakwaya_client: Any, gakwaya_org: Any, gakwaya_panel: Any
) -> None:
    # gakwaya_org added one member per role: each was an event the plugin received.
    r = gakwaya_client.get(HELLO.format("acme"), headers=gakwaya_org.keys["read"])
    welcomed = r.json()["welcomed"]
    assert welcomed == len(gakwaya_org.users)
    with gakwaya_panel.transaction() as session:
        rows = session.execute(
            select(welcomes.c.user_id).where(welcomes.c.org_id == gakwaya_org.id)
        ).all()
    assert sorted(r.user_id for r in rows) == sorted(u.id for u in gakwaya_org.users.values())


def test_adds_a_dashboard_page_and_a_nav_entry(gakwaya_kernel: Any, gakwaya_panel: Any) -> None:
    pages = [(c.plugin, c.item) for c in gakwaya_panel.contributions("pages")]
    assert [(p, i.path, i.permission) for p, i in pages if p == "gakwaya-hello"] == [
        ("gakwaya-hello", "/p/hello/orgs/{org}", "hello.greet")
    ]
    nav = [(c.plugin, c.item) for c in gakwaya_panel.contributions("nav")]
    assert [(i.label, i.href) for p, i in nav if p == "gakwaya-hello"] == [
        ("Hello", "/p/hello/orgs/{org}")
    ]
    status = gakwaya_kernel.plugins.statuses["gakwaya-hello"]
    assert status.status == "active", status.reason
