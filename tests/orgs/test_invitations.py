"""Invitations: create, list, revoke, accept (signed in) and register (new account)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from gakwaya.db.base import utcnow
from gakwaya.db.models import AuditRecord, Invitation, Membership, User
from gakwaya.security.passwords import verify_password
from gakwaya.security.tokens import digest
from tests.conftest import make_key, make_session, make_user
from tests.orgs.helpers import (
    API,
    BAD_EMAILS,
    BAD_NAMES,
    all_event_payloads,
    assert_invalid,
    events_of,
)

INVITES = f"{API}/orgs/acme/invitations"
ACCEPT = f"{API}/invitations/accept"
REGISTER = f"{API}/invitations/register"
PREVIEW = f"{API}/invitations/preview"
GOOD_PASSWORD = "a long and unusual passphrase 42"


def invite(client, headers, email="new.person@example.com", role="developer", org="acme"):
    return client.post(
        f"{API}/orgs/{org}/invitations", json={"email": email, "role": role}, headers=headers
    )


def test_admin_invites_and_gets_a_one_time_link(client, kernel, world):
    r = invite(client, world.a.sessions["admin"], email="New.Person@Example.com")
    assert r.status_code == 201, r.text
    body = r.json()
    token = body["token"]
    assert body["email"] == "new.person@example.com" and body["role"] == "developer"
    assert body["status"] == "pending" and body["invited_by_email"] == "admin@acme.example.com"
    base = kernel.settings.effective_base_url
    assert body["accept_url"] == f"{base}/invitations/accept?token={token}"
    created = dt.datetime.fromisoformat(body["created_at"])
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires - created == dt.timedelta(days=7)
    with kernel.db.session() as db:
        row = db.get(Invitation, body["id"])
        audit = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "invitations_create")
        ).one()
    assert row.token_hash == digest(token) and token not in (row.token_hash, row.email)
    assert (audit.target_type, audit.target_id) == ("invitation", str(body["id"]))
    assert token not in str(audit.detail)
    # The list shows it, never the token.
    r = client.get(INVITES, headers=world.a.sessions["admin"])
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [body["id"]]
    assert "token" not in r.json()["items"][0] and token not in r.text
    ev = events_of(kernel, "invitation.created")[-1]
    assert ev == {**ev, "invitation_id": body["id"], "role": "developer"}
    assert token not in all_event_payloads(kernel)


def test_owner_may_invite_an_owner(client, world):
    r = invite(client, world.a.sessions["owner"], role="owner")
    assert r.status_code == 201, r.text


def test_admin_cannot_invite_above_their_role(client, world):
    r = invite(client, world.a.sessions["admin"], role="owner")
    assert r.status_code == 403, r.text
    assert "owner" in r.json()["detail"]
    assert client.get(INVITES, headers=world.a.sessions["admin"]).json()["items"] == []


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_below_admin_cannot_invite_or_list(client, world, role):
    h = world.a.sessions[role]
    assert invite(client, h, role="viewer").status_code == 403
    assert client.get(INVITES, headers=h).status_code == 403


def test_inviting_a_member_is_409(client, world):
    r = invite(client, world.a.sessions["owner"], email="VIEWER@acme.example.com")
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["field"] == "email"


def test_a_new_invitation_replaces_the_pending_one(client, kernel, world):
    h = world.a.sessions["admin"]
    first = invite(client, h, role="viewer").json()
    second = invite(client, h, role="developer").json()
    items = client.get(INVITES, headers=h).json()["items"]
    assert [i["id"] for i in items] == [second["id"]]
    everything = client.get(f"{INVITES}?status=all", headers=h).json()["items"]
    assert {(i["id"], i["status"]) for i in everything} == {
        (first["id"], "revoked"),
        (second["id"], "pending"),
    }
    assert events_of(kernel, "invitation.revoked")[-1]["reason"] == "replaced"
    user = make_user(kernel, "new.person@example.com")
    r = client.post(ACCEPT, json={"token": first["token"]}, headers=make_session(kernel, user))
    assert r.status_code == 410, r.text
    r = client.post(ACCEPT, json={"token": second["token"]}, headers=make_session(kernel, user))
    assert r.status_code == 200 and r.json()["role"] == "developer"


def test_list_status_filter_is_validated(client, world):
    r = client.get(f"{INVITES}?status=weird", headers=world.a.sessions["admin"])
    assert_invalid(r, "status")


def test_revoke_invitation(client, kernel, world):
    h = world.a.sessions["admin"]
    inv = invite(client, h).json()
    r = client.delete(f"{INVITES}/{inv['id']}", headers=h)
    assert r.status_code == 204, r.text
    assert client.get(INVITES, headers=h).json()["items"] == []
    assert events_of(kernel, "invitation.revoked")[-1]["reason"] == "revoked"
    user = make_user(kernel, "new.person@example.com")
    r = client.post(ACCEPT, json={"token": inv["token"]}, headers=make_session(kernel, user))
    assert r.status_code == 410 and "revoked" in r.json()["detail"]
    # Revoking again is harmless.
    assert client.delete(f"{INVITES}/{inv['id']}", headers=h).status_code == 204


def test_revoke_accepted_invitation_is_409(client, kernel, world):
    h = world.a.sessions["admin"]
    inv = invite(client, h).json()
    user = make_user(kernel, "new.person@example.com")
    assert (
        client.post(
            ACCEPT, json={"token": inv["token"]}, headers=make_session(kernel, user)
        ).status_code
        == 200
    )
    r = client.delete(f"{INVITES}/{inv['id']}", headers=h)
    assert r.status_code == 409, r.text


def test_other_orgs_invitation_is_404(client, world):
    theirs = invite(client, world.b.sessions["owner"], email="x@example.com", org="globex")
    assert theirs.status_code == 201, theirs.text
    theirs = theirs.json()
    h = world.a.sessions["owner"]
    r = client.delete(f"{INVITES}/{theirs['id']}", headers=h)
    assert r.status_code == 404, r.text
    assert "x@example.com" not in r.text
    r = client.delete(f"{INVITES}/999999", headers=h)
    assert r.status_code == 404
    # Still pending in globex.
    items = client.get(f"{API}/orgs/globex/invitations", headers=world.b.sessions["owner"])
    assert [i["id"] for i in items.json()["items"]] == [theirs["id"]]


def test_accept_with_the_invited_account(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"], email="Someone@Example.com").json()
    user = make_user(kernel, "someone@example.com")
    h = make_session(kernel, user)
    r = client.post(ACCEPT, json={"token": inv["token"]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {**r.json(), "org_slug": "acme", "role": "developer", "user_id": user.id}
    assert client.get(f"{API}/orgs/acme", headers=h).json()["role"] == "developer"
    added = events_of(kernel, "member.added")[-1]
    assert added == {**added, "user_id": user.id, "via": "invitation"}
    accepted = events_of(kernel, "invitation.accepted")[-1]
    assert accepted == {**accepted, "user_id": user.id, "new_account": False}
    with kernel.db.session() as db:
        audit = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "invitations_accept")
        ).one()
    assert audit.org_id == world.a.org.id and audit.actor_id == str(user.id)
    # Used once.
    r = client.post(ACCEPT, json={"token": inv["token"]}, headers=h)
    assert r.status_code == 410 and "already been used" in r.json()["detail"]


def test_accept_with_another_email_is_403(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"]).json()
    r = client.post(ACCEPT, json={"token": inv["token"]}, headers=world.b.sessions["viewer"])
    assert r.status_code == 403, r.text
    assert "new.person@example.com" not in r.text
    with kernel.db.session() as db:
        assert (
            db.scalar(
                select(Membership).where(
                    Membership.org_id == world.a.org.id,
                    Membership.user_id == world.b.users["viewer"].id,
                )
            )
            is None
        )
    # The invitation is still usable by the right person.
    user = make_user(kernel, "new.person@example.com")
    r = client.post(ACCEPT, json={"token": inv["token"]}, headers=make_session(kernel, user))
    assert r.status_code == 200


def test_accept_refuses_keys_and_anonymous(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"]).json()
    user = make_user(kernel, "new.person@example.com")
    other = make_user(kernel)
    from tests.conftest import make_org

    org = make_org(kernel, "keyorg", {user: "owner", other: "owner"})
    key = make_key(kernel, user, org, ["admin"])
    assert client.post(ACCEPT, json={"token": inv["token"]}, headers=key).status_code == 403
    assert client.post(ACCEPT, json={"token": inv["token"]}).status_code == 401


def test_expired_and_unknown_tokens(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"]).json()
    with kernel.db.transaction() as db:
        db.get(Invitation, inv["id"]).expires_at = utcnow() - dt.timedelta(seconds=1)
    user = make_user(kernel, "new.person@example.com")
    h = make_session(kernel, user)
    r = client.post(ACCEPT, json={"token": inv["token"]}, headers=h)
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    r = client.post(REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD})
    assert r.status_code == 410
    r = client.post(ACCEPT, json={"token": "nope"}, headers=h)
    assert r.status_code == 404 and "invitation not found" in r.json()["detail"]
    assert client.get(INVITES, headers=world.a.sessions["admin"]).json()["items"] == []


def test_preview_says_what_the_invitation_offers_and_changes_nothing(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"], email="New.Person@Example.com").json()
    with kernel.db.session() as db:
        audit_rows = db.scalar(select(func.count()).select_from(AuditRecord))
        admin = db.scalars(select(User).where(User.email == "admin@acme.example.com")).one()
    # Anonymous (the invited person has no account yet) and signed in as anybody.
    for headers in ({}, world.b.sessions["owner"]):
        r = client.post(PREVIEW, json={"token": inv["token"]}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "org_slug": "acme",
            "org_name": world.a.org.name,
            "role": "developer",
            "email": "new.person@example.com",
            "invited_by": admin.name or admin.email,
            "expires_at": inv["expires_at"],
        }
    # A lookup: no audit row, no membership, and the token still works.
    with kernel.db.session() as db:
        assert db.scalar(select(func.count()).select_from(AuditRecord)) == audit_rows
        assert db.get(Invitation, inv["id"]).accepted_at is None
    r = client.post(REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD})
    assert r.status_code == 201, r.text
    # Used: the preview says so, as accepting would.
    r = client.post(PREVIEW, json={"token": inv["token"]})
    assert r.status_code == 410 and "already been used" in r.json()["detail"]


def test_preview_of_revoked_expired_and_unknown_invitations(client, kernel, world):
    revoked = invite(client, world.a.sessions["admin"], email="one@example.com").json()
    client.delete(f"{INVITES}/{revoked['id']}", headers=world.a.sessions["admin"])
    r = client.post(PREVIEW, json={"token": revoked["token"]})
    assert r.status_code == 410 and "revoked" in r.json()["detail"]
    expired = invite(client, world.a.sessions["admin"], email="two@example.com").json()
    with kernel.db.transaction() as db:
        db.get(Invitation, expired["id"]).expires_at = utcnow() - dt.timedelta(seconds=1)
    r = client.post(PREVIEW, json={"token": expired["token"]})
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    r = client.post(PREVIEW, json={"token": "nope"})
    assert r.status_code == 404 and "invitation not found" in r.json()["detail"]
    assert "Acme" not in r.text


@pytest.mark.edge_rule
def test_preview_bad_token_shapes_and_read_only_keys(client, world):
    assert_invalid(client.post(PREVIEW, json={"token": ""}), "token")
    assert_invalid(client.post(PREVIEW, json={"token": "x" * 201}), "token")
    assert_invalid(client.post(PREVIEW, json={}), "token")
    r = client.post(PREVIEW, json={"token": "abc", "org": "acme"})
    assert r.status_code == 400 and "unknown field `org`" in r.json()["detail"]
    # Whatever the route, a read-only key changes nothing, and is refused on a POST.
    r = client.post(PREVIEW, json={"token": "abc"}, headers=world.a.keys["read"])
    assert r.status_code == 403 and "read-only" in r.json()["detail"]


def test_register_creates_the_account_and_membership(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"], role="viewer").json()
    r = client.post(
        REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD, "name": "New Person"}
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        **r.json(),
        "email": "new.person@example.com",
        "role": "viewer",
        "org_slug": "acme",
    }
    with kernel.db.session() as db:
        user = db.scalars(select(User).where(User.email == "new.person@example.com")).one()
        role = db.scalar(select(Membership.role).where(Membership.user_id == user.id))
        audit = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "invitations_register")
        ).one()
    assert user.name == "New Person" and role == "viewer"
    assert verify_password(user.password_hash, GOOD_PASSWORD)
    assert (audit.actor_type, audit.actor_id, audit.org_id) == (
        "user",
        str(user.id),
        world.a.org.id,
    )
    assert GOOD_PASSWORD not in str(audit.detail)
    assert events_of(kernel, "invitation.accepted")[-1]["new_account"] is True
    # Used once.
    r = client.post(REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD})
    assert r.status_code == 410


def test_register_when_the_account_exists_is_409(client, kernel, world):
    inv = invite(client, world.a.sessions["admin"]).json()
    make_user(kernel, "NEW.PERSON@example.com")
    r = client.post(REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD})
    assert r.status_code == 409 and "sign in" in r.json()["detail"]


@pytest.mark.parametrize("password", ["short", "password1234", "new.person@example.com", ""])
def test_register_enforces_the_password_policy(client, kernel, world, password):
    inv = invite(client, world.a.sessions["admin"]).json()
    r = client.post(REGISTER, json={"token": inv["token"], "password": password})
    assert_invalid(r, "password")
    # Nothing was created; the token still works.
    r = client.post(REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("name", BAD_NAMES)
def test_register_bad_name(client, world, name):
    inv = invite(client, world.a.sessions["admin"]).json()
    r = client.post(REGISTER, json={"token": inv["token"], "password": GOOD_PASSWORD, "name": name})
    assert_invalid(r, "name")


def test_register_and_accept_bad_token_shapes(client, world):
    h = world.a.sessions["viewer"]
    assert_invalid(client.post(ACCEPT, json={"token": ""}, headers=h), "token")
    assert_invalid(client.post(ACCEPT, json={"token": "x" * 201}, headers=h), "token")
    assert_invalid(client.post(ACCEPT, json={}, headers=h), "token")
    assert_invalid(client.post(REGISTER, json={"password": GOOD_PASSWORD}), "token")
    assert_invalid(client.post(REGISTER, json={"token": "abc"}), "password")


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_invite_bad_email(client, world, email):
    assert_invalid(invite(client, world.a.sessions["owner"], email=email), "email")


@pytest.mark.parametrize("role", ["superuser", "OWNER", "", 1])
def test_invite_bad_role(client, world, role):
    assert_invalid(invite(client, world.a.sessions["owner"], role=role), "role")
