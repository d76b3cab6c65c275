"""The reconciler's domain step: automatic TXT verification (against challtestsrv),
certificate states from a ``certs`` provider and their events, default domains for
apps that lack one (also from the deploy pipeline)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from sqlalchemy import delete, select

from gakwaya.db.models import Deployment, Domain
from gakwaya.deploy.reconciler import reconcile
from gakwaya_sdk.providers import CertificateStatus
from tests.domains.conftest import BASE
from tests.domains.helpers import API, app_with_project, domains_url, run_app
from tests.orgs.helpers import events_of


def _add(client: Any, app: Any, headers: dict[str, str], name: str) -> Any:
    r = client.post(domains_url(app["id"]), json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _row(kernel: Any, domain_id: int) -> Domain:
    with kernel.db.session() as db:
        row = db.get(Domain, domain_id)
        assert row is not None
        return row


def test_pending_domains_are_verified_automatically(client, kernel, world, doubles, challtestsrv):
    dev = world.a.sessions["developer"]
    web = app_with_project(client, dev)
    run_app(kernel, doubles, web["id"])
    proven = _add(client, web, dev, f"auto-{uuid.uuid4().hex[:8]}.example.com")
    waiting = _add(client, web, dev, f"later-{uuid.uuid4().hex[:8]}.example.com")
    challtestsrv.set_txt(proven["verification"]["record"], proven["verification"]["value"])
    try:
        report = reconcile(kernel)
    finally:
        challtestsrv.clear_txt(proven["verification"]["record"])
    assert f"domain {proven['id']} ({proven['name']}): verified by its TXT record" in (
        report.actions
    )
    assert [e["domain_id"] for e in events_of(kernel, "domain.verified")] == [proven["id"]]
    # Routed in the same pass.
    assert proven["name"] in doubles.proxy.domains
    assert waiting["name"] not in doubles.proxy.domains
    row = _row(kernel, waiting["id"])
    assert row.verified_at is None and row.verify_checked_at is not None
    assert waiting["verification"]["record"] in row.verify_error
    # At most one lookup per reconcile period (an hour here): the next pass skips it
    # even once the record exists.
    challtestsrv.set_txt(waiting["verification"]["record"], waiting["verification"]["value"])
    try:
        reconcile(kernel)
        assert _row(kernel, waiting["id"]).verify_checked_at == row.verify_checked_at
        assert _row(kernel, waiting["id"]).verified_at is None
        # Asking for it is not limited.
        r = client.post(f"{API}/domains/{waiting['id']}/verify", headers=dev)
        assert r.status_code == 200, r.text
    finally:
        challtestsrv.clear_txt(waiting["verification"]["record"])
    assert waiting["name"] in doubles.proxy.domains


def test_certificate_events(client, kernel, world, doubles):
    dev = world.a.sessions["developer"]
    web = app_with_project(client, dev)
    run_app(kernel, doubles, web["id"])
    name = f"web-production.{BASE}"
    (domain,) = client.get(domains_url(web["id"]), headers=dev).json()["items"]

    def given(state: str, days: float | None = None, reason: str = "") -> dt.datetime | None:
        not_after = (
            (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(microsecond=0)
            if days is not None
            else None
        )
        doubles.certs.states[name] = CertificateStatus(
            domain=name, state=state, not_after=not_after, issuer="CN=Test CA", reason=reason
        )
        return not_after

    def kinds() -> list[str]:
        return [
            t
            for t in ("certificate.issued", "certificate.failed", "certificate.expiring")
            for _ in events_of(kernel, t)
        ]

    reconcile(kernel)  # pending: nothing to say
    assert doubles.certs.asked[-1] == [name]
    assert kinds() == []
    assert _row(kernel, domain["id"]).cert_checked_at is not None

    first = given("issued", days=80)
    reconcile(kernel)
    reconcile(kernel)
    issued = events_of(kernel, "certificate.issued")
    assert len(issued) == 1 and issued[0]["name"] == name
    assert issued[0]["issuer"] == "CN=Test CA" and issued[0]["org_id"] == world.a.org.id
    row = _row(kernel, domain["id"])
    assert (row.cert_state, row.cert_not_after, row.cert_issuer) == ("issued", first, "CN=Test CA")
    shown = client.get(f"{API}/domains/{domain['id']}", headers=dev).json()["certificate"]
    assert shown["state"] == "issued"

    # A renewal failed: one event with the CA's words, however many passes see it.
    given("failed", days=80, reason="urn:ietf:params:acme:error:rateLimited: too many")
    reconcile(kernel)
    reconcile(kernel)
    failed = events_of(kernel, "certificate.failed")
    assert [e["reason"] for e in failed] == ["urn:ietf:params:acme:error:rateLimited: too many"]
    assert _row(kernel, domain["id"]).cert_reason.startswith("urn:ietf")

    # Under 14 days left: one warning per certificate.
    near = given("failed", days=5)
    reconcile(kernel)
    reconcile(kernel)
    expiring = events_of(kernel, "certificate.expiring")
    assert len(expiring) == 1 and expiring[0]["days_left"] in (4, 5)
    assert _row(kernel, domain["id"]).cert_warned_for == near

    # Renewed: issued again (a new certificate); a new one near its end warns again.
    given("issued", days=90)
    reconcile(kernel)
    assert len(events_of(kernel, "certificate.issued")) == 2
    given("issued", days=3)
    reconcile(kernel)
    assert len(events_of(kernel, "certificate.issued")) == 3
    assert len(events_of(kernel, "certificate.expiring")) == 2


def test_pending_domains_get_no_certificate_polling(client, kernel, world, doubles):
    dev = world.a.sessions["developer"]
    web = app_with_project(client, dev)
    _add(client, web, dev, f"pend-{uuid.uuid4().hex[:8]}.example.com")
    reconcile(kernel)
    assert doubles.certs.asked == [[f"web-production.{BASE}"]]


def test_default_domains_are_made_again_and_by_the_pipeline(client, kernel, world, doubles):
    dev = world.a.sessions["developer"]
    web = app_with_project(client, dev, source_type="image", image="gakwaya-test/web:1")
    name = f"web-production.{BASE}"

    def defaults() -> list[str]:
        with kernel.db.session() as db:
            return list(
                db.scalars(
                    select(Domain.name).where(Domain.app_id == web["id"], Domain.kind == "default")
                )
            )

    assert defaults() == [name]
    # An app older than the base domain setting has none: the reconciler gives it one.
    with kernel.db.transaction() as db:
        db.execute(delete(Domain).where(Domain.app_id == web["id"]))
    report = reconcile(kernel)
    assert "1 default domain(s) created" in report.actions
    assert defaults() == [name]
    reconcile(kernel)
    assert defaults() == [name]

    # …and so does a deployment, before it switches traffic.
    with kernel.db.transaction() as db:
        db.execute(delete(Domain).where(Domain.app_id == web["id"]))
    r = client.post(f"{API}/apps/{web['id']}/deployments", headers=dev)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while True:
        with kernel.db.session() as db:
            state = db.get(Deployment, r.json()["id"]).state
        if state in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state == "succeeded"
    assert defaults() == [name]
