"""The desired routes: what every proxy is given for apps' domains and the panel's own,
computed from a real database (the instances come from the runtime double)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlalchemy import select, update

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Domain
from gakwaya.deploy import keys
from gakwaya.deploy.reconciler import reconcile
from gakwaya.deploy.runtime import desired_routes, our_instances
from gakwaya.domains.routing import panel_upstream
from gakwaya.settings import Settings
from gakwaya_sdk.providers import Instance, Route
from tests.domains.conftest import BASE
from tests.domains.helpers import app_with_project, domains_url, run_app

MIB = 1024 * 1024


def wire(routes: list[Route]) -> Any:
    """Routes as the proxies receive them (JSON: a tuple and a list are one array)."""
    return msgspec.json.decode(msgspec.json.encode(routes))


def _custom(client: Any, app: Any, headers: dict[str, str], name: str, **extra: Any) -> int:
    r = client.post(domains_url(app["id"]), json={"name": name, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _activate(kernel: Any, *domain_ids: int) -> None:
    """Mark domains verified (the verification itself: test_api.py, test_reconcile.py)."""
    with kernel.db.transaction() as db:
        db.execute(update(Domain).where(Domain.id.in_(domain_ids)).values(verified_at=utcnow()))


def test_domain_routes(client, kernel, world, doubles):
    dev = world.a.sessions["developer"]
    web = app_with_project(
        client,
        dev,
        health={"kind": "http", "path": "/healthz", "interval": 4, "timeout": 1.5},
    )
    worker = app_with_project(client, dev, "worker")  # tcp health check, not running
    shop = _custom(client, web, dev, "shop.example.com", redirect="www_to_apex", max_body_mb=3)
    www = _custom(
        client,
        web,
        dev,
        "www.example.org",
        redirect="apex_to_www",
        timeout_seconds=45,
        https_redirect=False,
    )
    _custom(client, web, dev, "pending.example.com")
    _activate(kernel, shop, www)
    release = run_app(kernel, doubles, web["id"], "127.0.0.1:41002", "127.0.0.1:41001")
    key = keys.app_key(kernel.installation_id, web["id"])
    # An instance of an older release, and a stopped one, are not upstreams.
    doubles.runtime.running += [
        Instance(
            id="old",
            name="old",
            app=key,
            release="r999",
            state="running",
            address="127.0.0.1:49999",
        ),
        Instance(
            id="dead",
            name="dead",
            app=key,
            release=keys.release_key(release),
            state="exited",
            address="127.0.0.1:49998",
        ),
    ]
    routes = desired_routes(kernel, our_instances(kernel))
    upstreams = ["127.0.0.1:41001", "127.0.0.1:41002"]
    common = {
        "app": key,
        "upstreams": upstreams,
        "health_path": "/healthz",
        "health_interval": 4.0,
        "health_timeout": 1.5,
    }
    assert wire(routes) == wire(
        [
            Route(app=key, upstreams=upstreams, port=web["host_port"], tls=False),
            Route(
                **common,
                domain="shop.example.com",
                redirect_from=["www.shop.example.com"],
                max_body_bytes=3 * MIB,
            ),
            Route(**common, domain=f"web-production.{BASE}"),
            Route(
                **common,
                domain="www.example.org",
                redirect_from=["example.org"],
                https_redirect=False,
                timeout=45.0,
            ),
        ],
    )
    # The worker has no release: no route of any kind. Once it runs, its default domain
    # is routed with no active health check (tcp apps are checked by connection only).
    run_app(kernel, doubles, worker["id"], "127.0.0.1:42001")
    wkey = keys.app_key(kernel.installation_id, worker["id"])
    routes = desired_routes(kernel, our_instances(kernel))
    worker_routes = [r for r in routes if r.app == wkey and r.domain]
    assert wire(worker_routes) == wire(
        [
            Route(
                app=wkey,
                upstreams=["127.0.0.1:42001"],
                domain=f"worker-production.{BASE}",
                health_path=None,
                health_interval=2.0,
                health_timeout=3.0,
            )
        ],
    )
    # override (the switch step) replaces the upstreams of every route of the app.
    routes = desired_routes(kernel, our_instances(kernel), override={key: ["10.0.0.9:80"]})
    assert {tuple(r.upstreams) for r in routes if r.app == key} == {("10.0.0.9:80",)}
    # A stopped app is not routed at all.
    with kernel.db.transaction() as db:
        db.execute(update(App).where(App.id == web["id"]).values(desired_state="stopped"))
    assert [r for r in desired_routes(kernel, our_instances(kernel)) if r.app == key] == []


@pytest.mark.parametrize(
    "extra_settings",
    [{"panel_domain": "Panel.Example.TEST", "host": "0.0.0.0", "port": 8123}],  # noqa: S104
)
def test_panel_route(kernel):
    routes = desired_routes(kernel, [])
    assert routes == [
        Route(
            app="panel",
            upstreams=["127.0.0.1:8123"],
            domain="panel.example.test",
            health_path="/healthz",
        )
    ]


@pytest.mark.parametrize(
    ("host", "upstream"),
    [
        ("0.0.0.0", "127.0.0.1:9"),  # noqa: S104 (a setting value)
        ("::", "[::1]:9"),
        ("::1", "[::1]:9"),
        ("10.1.2.3", "10.1.2.3:9"),
        ("localhost", "localhost:9"),
    ],
)
def test_panel_upstream(host, upstream):
    assert panel_upstream(Settings(host=host, port=9)) == upstream


@pytest.mark.parametrize(
    "extra_settings", [{"panel_domain": "panel.example.test", "domains_tls": False}]
)
def test_panel_alone_is_routed_by_the_reconciler(kernel, doubles):
    """No app at all: the reconciler has nothing else to do but serve the panel."""
    report = reconcile(kernel)
    assert report.errors == [], report.errors
    assert doubles.proxy.routes() == [
        Route(
            app="panel",
            upstreams=["127.0.0.1:8000"],
            domain="panel.example.test",
            tls=False,
            health_path="/healthz",
        )
    ]
    assert report.drift == ["proxy:recorder: routes differed; applied again"]
    assert reconcile(kernel).drift == []


def test_reconciler_restores_domain_routes(client, kernel, world, doubles):
    """A proxy that lost its routes (restarted) gets the domains back in one pass."""
    dev = world.a.sessions["developer"]
    web = app_with_project(client, dev)
    run_app(kernel, doubles, web["id"], "127.0.0.1:41001")
    reconcile(kernel)
    assert doubles.proxy.domains == [f"web-production.{BASE}"]
    doubles.proxy.applied.append([])  # the proxy restarted empty
    report = reconcile(kernel)
    assert "proxy:recorder: routes differed; applied again" in report.drift
    assert doubles.proxy.domains == [f"web-production.{BASE}"]
    with kernel.db.session() as db:
        assert db.scalars(select(Domain.kind).where(Domain.app_id == web["id"])).all() == [
            "default"
        ]
