"""``gakwaya domain``: the API's services and rules from the shell, with TXT
verification against challtestsrv."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gakwaya.cli import main
from gakwaya.db.models import AuditRecord, Domain
from gakwaya_sdk.domains import DOMAIN_RULE
from tests.domains.conftest import BASE, IPV4
from tests.domains.helpers import app_with_project, domain_rows
from tests.orgs.helpers import events_of


@pytest.fixture
def cli(kernel, world, domain_settings):
    s = kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
        "GAKWAYA_PROXY_BASE_DOMAIN": BASE,
        "GAKWAYA_SERVER_IPV4": IPV4,
        "GAKWAYA_DNS_RESOLVER": domain_settings["dns_resolver"],
        # The CLI's own panel has no proxy to apply routes to (the serving panel's
        # reconciler does it); nor Docker.
        "GAKWAYA_DISABLED_PLUGINS": ",".join(domain_settings["disabled_plugins"]),
    }

    def run(*args: str, input: str | None = None) -> Any:
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


@pytest.fixture
def web(client, world) -> Any:
    return app_with_project(client, world.a.sessions["developer"])


def _id(output: str) -> int:
    return int(output.split("(id ")[1].split(")")[0])


def test_add_show_verify_set_remove(cli, kernel, world, web, challtestsrv):
    name = f"cli-{uuid.uuid4().hex[:8]}.example.com"
    r = cli(
        "domain",
        "add",
        "--org",
        "acme",
        "shop/production/web",
        name.upper(),
        "--redirect",
        "www_to_apex",
        "--max-body-mb",
        "8",
        "--timeout",
        "30",
    )
    assert r.exit_code == 0, r.output
    domain_id = _id(r.output)
    with kernel.db.session() as db:
        row = db.get(Domain, domain_id)
        assert row is not None
        token = row.token
    # The records to create, as the API lists them.
    assert f"{name:<40} A     {IPV4}   (routing)" in r.output
    assert f"{'www.' + name:<40} A     {IPV4}   (routing)" in r.output
    assert f"_gakwaya-challenge.{name}" in r.output and token in r.output
    assert events_of(kernel, "domain.added")[-1]["name"] == name

    r = cli("domain", "list", "--org", "acme", str(web["id"]))
    assert r.exit_code == 0, r.output
    assert name in r.output and f"web-production.{BASE}" in r.output
    assert "pending" in r.output and "active" in r.output

    r = cli("domain", "verify", "--org", "acme", str(domain_id))
    assert r.exit_code == 1
    assert f"_gakwaya-challenge.{name}" in r.output and "expected the value" in r.output
    r = cli("domain", "show", "--org", "acme", str(domain_id))
    assert "state:         pending verification" in r.output and "last check:" in r.output

    challtestsrv.set_txt(f"_gakwaya-challenge.{name}", token)
    try:
        r = cli("domain", "verify", "--org", "acme", str(domain_id))
    finally:
        challtestsrv.clear_txt(f"_gakwaya-challenge.{name}")
    assert r.exit_code == 0, r.output
    assert f"domain {name} verified" in r.output
    assert [e["domain_id"] for e in events_of(kernel, "domain.verified")] == [domain_id]

    r = cli("domain", "show", "--org", "acme", str(domain_id))
    assert r.exit_code == 0, r.output
    assert "state:         active" in r.output
    assert "max body:      8 MiB" in r.output and "timeout:       30s" in r.output
    assert f"www.{name} redirects here" in r.output
    assert "certificate:   pending" in r.output

    r = cli(
        "domain",
        "set",
        "--org",
        "acme",
        str(domain_id),
        "--no-https-redirect",
        "--no-max-body",
        "--redirect",
        "none",
    )
    assert r.exit_code == 0, r.output
    with kernel.db.session() as db:
        row = db.get(Domain, domain_id)
        assert (row.https_redirect, row.max_body_mb, row.redirect) == (False, None, "none")
    r = cli("domain", "set", "--org", "acme", str(domain_id), "--timeout", "30")
    assert r.output.strip() == "nothing to change"

    r = cli("domain", "remove", "--org", "acme", str(domain_id), "--yes")
    assert r.exit_code == 0, r.output
    with kernel.db.session() as db:
        assert db.get(Domain, domain_id) is None
        actions = [
            (a.action, a.actor_type)
            for a in db.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        ]
    for action in ("domains_create", "domains_verify", "domains_update", "domains_delete"):
        assert (action, "cli") in actions


def test_refusals(cli, kernel, world, web):
    before = domain_rows(kernel)
    for bad in ("a;b.example.com", "$(id).example.com", "-x.example.com", "example.com:80"):
        r = cli("domain", "add", "--org", "acme", str(web["id"]), "--", bad)
        assert r.exit_code == 2, r.output
        assert f"NAME: {DOMAIN_RULE}" in r.output
    r = cli("domain", "add", "--org", "acme", str(web["id"]), "x.example.com", "--max-body-mb", "0")
    assert r.exit_code == 2 and "--max-body-mb" in r.output
    r = cli(
        "domain",
        "add",
        "--org",
        "acme",
        str(web["id"]),
        "x.example.com",
        "--redirect",
        "apex_to_www",
    )
    assert r.exit_code == 2 and "--redirect: apex_to_www needs" in r.output
    assert domain_rows(kernel) == before

    r = cli("domain", "add", "--org", "acme", str(web["id"]), "twice.example.com")
    assert r.exit_code == 0, r.output
    r = cli("domain", "add", "--org", "acme", str(web["id"]), "twice.example.com")
    assert r.exit_code == 1 and "NAME: twice.example.com is already domain" in r.output
    # Another organization's app and domains do not exist for it.
    r = cli("domain", "list", "--org", "globex", str(web["id"]))
    assert r.exit_code == 1 and "not found" in r.output
    default_id = next(d.id for d in _rows(kernel) if d.kind == "default")
    for command in (("show",), ("verify",), ("remove", "--yes")):
        r = cli("domain", command[0], "--org", "globex", str(default_id), *command[1:])
        assert r.exit_code == 1 and f"domain {default_id} not found" in r.output
    r = cli("domain", "remove", "--org", "acme", str(default_id), "--yes")
    assert r.exit_code == 1 and "default domain" in r.output
    r = cli("domain", "verify", "--org", "acme", str(default_id))
    assert r.exit_code == 0 and "already active" in r.output


def _rows(kernel: Any) -> list[Domain]:
    with kernel.db.session() as db:
        return list(db.scalars(select(Domain)))
