"""``gakwaya invitation`` and ``gakwaya org members``: invitations and members from the
server's shell, through the same services as the API."""

from __future__ import annotations

import re
from functools import partial

import pytest
from sqlalchemy import func, select

from gakwaya.db.models import AuditRecord, Invitation
from tests.audit.helpers import cli as run_cli
from tests.orgs.helpers import API, BAD_EMAILS, events_of

LINK = re.compile(r"^(http\S+/invitations/accept\?token=(\S+))$", re.M)
PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def cli(kernel):
    """``gakwaya <args>`` against this test's database and key."""
    return partial(run_cli, kernel)


def invitations(kernel) -> int:
    with kernel.db.session() as db:
        return db.scalar(select(func.count()).select_from(Invitation)) or 0


def test_invite_from_the_shell_and_join_from_the_link(cli, client, kernel, world):
    r = cli(
        "invitation", "create", "--org", "acme", "--email", "Ops@Example.com", "--role", "admin"
    )
    assert r.exit_code == 0, r.output
    (link,) = LINK.findall(r.stdout)
    url, token = link
    assert url == f"{kernel.settings.effective_base_url}/invitations/accept?token={token}"
    assert "ops@example.com as admin in 'acme'" in r.stdout
    assert "not shown again" in r.stderr
    with kernel.db.session() as db:
        inv = db.scalars(select(Invitation)).one()
        audit = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "invitations_create")
        ).one()
    assert (inv.email, inv.role, inv.invited_by_id) == ("ops@example.com", "admin", None)
    assert (audit.actor_type, audit.org_id, audit.target_id) == ("cli", world.a.org.id, str(inv.id))
    assert token not in str(audit.detail)
    assert events_of(kernel, "invitation.created")[-1]["invitation_id"] == inv.id
    # The link is the API's: previewed, then used to register.
    r = client.post(f"{API}/invitations/preview", json={"token": token})
    assert r.status_code == 200 and r.json()["role"] == "admin" and r.json()["invited_by"] is None
    # Listed without its link; then joined, and a member.
    listed = cli("invitation", "list", "--org", "acme")
    assert listed.exit_code == 0 and "pending" in listed.output and token not in listed.output
    assert "ops@example.com (gakwaya CLI)" in listed.output
    r = client.post(f"{API}/invitations/register", json={"token": token, "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert "no pending invitations in 'acme'" in cli("invitation", "list", "--org", "acme").output
    assert "accepted" in cli("invitation", "list", "--org", "acme", "--all").output
    members = cli("org", "members", "--org", "acme")
    assert members.exit_code == 0, members.output
    assert re.search(r"\badmin\s+\S+ \S+\s+ops@example\.com\b", members.output), members.output
    assert "owner@acme.example.com" in members.output
    assert "globex" not in members.output
    # An accepted invitation cannot be revoked: remove the member instead.
    r = cli("invitation", "revoke", "--org", "acme", str(inv.id))
    assert r.exit_code == 1 and "already accepted" in r.output


def test_revoke_stops_the_link(cli, client, kernel, world):
    r = cli("invitation", "create", "--org", "acme", "--email", "x@example.com", "--role", "viewer")
    token = LINK.findall(r.stdout)[0][1]
    with kernel.db.session() as db:
        inv_id = db.scalars(select(Invitation.id)).one()
    # Another organization's slug does not reach it.
    r = cli("invitation", "revoke", "--org", "globex", str(inv_id))
    assert r.exit_code == 1 and "not found" in r.output
    r = cli("invitation", "revoke", "--org", "acme", str(inv_id))
    assert r.exit_code == 0 and f"revoked invitation {inv_id} (x@example.com)" in r.output
    assert client.post(f"{API}/invitations/preview", json={"token": token}).status_code == 410
    assert "already revoked" in cli("invitation", "revoke", "--org", "acme", str(inv_id)).output
    assert "revoked" in cli("invitation", "list", "--org", "acme", "--all").output
    assert events_of(kernel, "invitation.revoked")[-1]["reason"] == "revoked"


@pytest.mark.edge_rule
@pytest.mark.parametrize("email", [*BAD_EMAILS, "-x@example.com", "a`id`@example.com", "a;b@x.io"])
def test_a_bad_address_is_refused_naming_the_option(cli, kernel, world, email):
    r = cli("invitation", "create", "--org", "acme", "--email", email, "--role", "viewer")
    assert r.exit_code == 2 and "--email:" in r.output, r.output
    assert invitations(kernel) == 0


def test_bad_role_org_and_member_are_refused(cli, kernel, world):
    r = cli("invitation", "create", "--org", "acme", "--email", "a@example.com", "--role", "god")
    assert r.exit_code == 2 and "--role" in r.output
    r = cli(
        "invitation", "create", "--org", "../acme", "--email", "a@example.com", "--role", "viewer"
    )
    assert r.exit_code == 1 and "organization '../acme' not found" in r.output
    r = cli(
        "invitation",
        "create",
        "--org",
        "acme",
        "--email",
        "viewer@acme.example.com",
        "--role",
        "admin",
    )
    assert r.exit_code == 1 and "already a member" in r.output
    assert invitations(kernel) == 0
    r = cli("invitation", "revoke", "--org", "acme", "0")
    assert r.exit_code == 2 and "INVITATION_ID" in r.output
    assert cli("org", "members", "--org", "nope").exit_code == 1
