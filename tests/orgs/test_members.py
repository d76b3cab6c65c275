"""Members: listing, role changes, removal, leaving; escalation and last-owner rules."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gakwaya.db.models import ApiKey, AuditRecord, Membership
from tests.conftest import make_key, make_session, make_user
from tests.orgs.helpers import API, assert_invalid, events_of

MEMBERS = f"{API}/orgs/acme/members"


def role_of(kernel, org, user):
    with kernel.db.session() as db:
        return db.scalar(
            select(Membership.role).where(
                Membership.org_id == org.id, Membership.user_id == user.id
            )
        )


def add_member(kernel, org, role, email=None):
    user = make_user(kernel, email)
    with kernel.db.transaction() as db:
        db.add(Membership(org_id=org.id, user_id=user.id, role=role))
    return user, make_session(kernel, user)


@pytest.mark.parametrize("role", ["owner", "admin", "developer", "viewer"])
def test_list_members_as_each_role(client, world, role):
    r = client.get(MEMBERS, headers=world.a.sessions[role])
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {(m["email"], m["role"]) for m in items} == {
        (f"{x}@acme.example.com", x) for x in ("owner", "admin", "developer", "viewer")
    }
    assert "globex" not in r.text


def test_list_members_pages(client, world):
    h = world.a.sessions["viewer"]
    first = client.get(f"{MEMBERS}?limit=3", headers=h).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = client.get(f"{MEMBERS}?limit=3&cursor={first['next_cursor']}", headers=h).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert_invalid(client.get(f"{MEMBERS}?cursor=-1", headers=h), "cursor")


def test_owner_changes_roles(client, kernel, world):
    dev = world.a.users["developer"]
    r = client.patch(
        f"{MEMBERS}/{dev.id}", json={"role": "admin"}, headers=world.a.sessions["owner"]
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        **r.json(),
        "user_id": dev.id,
        "role": "admin",
        "email": "developer@acme.example.com",
    }
    assert role_of(kernel, world.a.org, dev) == "admin"
    changed = events_of(kernel, "member.role_changed")[-1]
    assert changed == {
        **changed,
        "user_id": dev.id,
        "old_role": "developer",
        "new_role": "admin",
        "changed_by": world.a.users["owner"].id,
    }
    with kernel.db.session() as db:
        row = db.scalars(select(AuditRecord).where(AuditRecord.action == "members_update")).one()
    assert (row.target_type, row.target_id, row.detail.get("role")) == (
        "member",
        str(dev.id),
        "admin",
    )
    # Promote to owner, then the new owner may demote the first one.
    r = client.patch(
        f"{MEMBERS}/{dev.id}", json={"role": "owner"}, headers=world.a.sessions["owner"]
    )
    assert r.status_code == 200, r.text
    first = world.a.users["owner"]
    r = client.patch(
        f"{MEMBERS}/{first.id}", json={"role": "viewer"}, headers=make_session(kernel, dev)
    )
    assert r.status_code == 200, r.text
    assert role_of(kernel, world.a.org, first) == "viewer"


def test_admin_changes_roles_up_to_admin(client, kernel, world):
    h = world.a.sessions["admin"]
    viewer = world.a.users["viewer"]
    r = client.patch(f"{MEMBERS}/{viewer.id}", json={"role": "developer"}, headers=h)
    assert r.status_code == 200, r.text
    r = client.patch(f"{MEMBERS}/{viewer.id}", json={"role": "admin"}, headers=h)
    assert r.status_code == 200, r.text
    # Same rank: an admin may demote another admin.
    r = client.patch(f"{MEMBERS}/{viewer.id}", json={"role": "viewer"}, headers=h)
    assert r.status_code == 200, r.text


def test_admin_cannot_promote_to_owner(client, kernel, world):
    for target in ("viewer", "admin"):
        user = world.a.users[target]
        r = client.patch(
            f"{MEMBERS}/{user.id}", json={"role": "owner"}, headers=world.a.sessions["admin"]
        )
        assert r.status_code == 403, r.text
        assert "owner" in r.json()["detail"]
        assert role_of(kernel, world.a.org, user) == target


def test_admin_cannot_demote_or_remove_an_owner(client, kernel, world):
    owner = world.a.users["owner"]
    for role in ("admin", "viewer", "owner"):
        r = client.patch(
            f"{MEMBERS}/{owner.id}", json={"role": role}, headers=world.a.sessions["admin"]
        )
        assert r.status_code == 403, r.text
    r = client.delete(f"{MEMBERS}/{owner.id}", headers=world.a.sessions["admin"])
    assert r.status_code == 403, r.text
    assert role_of(kernel, world.a.org, owner) == "owner"
    # The owner's admin-scope key acts as the owner: it may grant owner.
    r = client.patch(
        f"{MEMBERS}/{world.a.users['viewer'].id}",
        json={"role": "owner"},
        headers=world.a.keys["admin"],
    )
    assert r.status_code == 200, r.text


def test_admin_cannot_promote_themself(client, kernel, world):
    admin = world.a.users["admin"]
    r = client.patch(
        f"{MEMBERS}/{admin.id}", json={"role": "owner"}, headers=world.a.sessions["admin"]
    )
    assert r.status_code == 403
    assert role_of(kernel, world.a.org, admin) == "admin"


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_below_admin_cannot_change_or_remove(client, kernel, world, role):
    target = world.a.users["viewer" if role == "developer" else "developer"]
    h = world.a.sessions[role]
    assert (
        client.patch(f"{MEMBERS}/{target.id}", json={"role": "viewer"}, headers=h).status_code
        == 403
    )
    assert (
        client.patch(
            f"{MEMBERS}/{world.a.users[role].id}", json={"role": "admin"}, headers=h
        ).status_code
        == 403
    )
    assert client.delete(f"{MEMBERS}/{target.id}", headers=h).status_code == 403


def test_last_owner_cannot_be_demoted_removed_or_leave(client, kernel, world):
    owner = world.a.users["owner"]
    h = world.a.sessions["owner"]
    for r in (
        client.patch(f"{MEMBERS}/{owner.id}", json={"role": "admin"}, headers=h),
        client.delete(f"{MEMBERS}/{owner.id}", headers=h),
        client.post(f"{API}/orgs/acme/leave", headers=h),
    ):
        assert r.status_code == 409, r.text
        assert "last owner" in r.json()["detail"]
        assert "promote another member to owner first" in r.json()["detail"]
    assert role_of(kernel, world.a.org, owner) == "owner"
    # With a second owner, the first may step down.
    _second, h2 = add_member(kernel, world.a.org, "owner")
    r = client.patch(f"{MEMBERS}/{owner.id}", json={"role": "admin"}, headers=h)
    assert r.status_code == 200, r.text
    # ...and now the second is the last one.
    r = client.post(f"{API}/orgs/acme/leave", headers=h2)
    assert r.status_code == 409


def test_an_owner_may_leave_when_another_owner_remains(client, kernel, world):
    add_member(kernel, world.a.org, "owner")
    r = client.post(f"{API}/orgs/acme/leave", headers=world.a.sessions["owner"])
    assert r.status_code == 204, r.text
    assert role_of(kernel, world.a.org, world.a.users["owner"]) is None


def test_remove_member_revokes_their_keys(client, kernel, world):
    dev = world.a.users["developer"]
    key = make_key(kernel, dev, world.a.org, ["write"])
    assert client.get(f"{API}/orgs/acme", headers=key).status_code == 200
    r = client.delete(f"{MEMBERS}/{dev.id}", headers=world.a.sessions["admin"])
    assert r.status_code == 204, r.text
    assert role_of(kernel, world.a.org, dev) is None
    r = client.get(f"{API}/orgs/acme", headers=key)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    with kernel.db.session() as db:
        keys = db.scalars(select(ApiKey).where(ApiKey.user_id == dev.id)).all()
    assert keys and all(k.revoked_at is not None for k in keys)
    removed = events_of(kernel, "member.removed")[-1]
    assert removed == {**removed, "user_id": dev.id, "role": "developer", "reason": "removed"}
    assert events_of(kernel, "api_key.revoked")[-1]["reason"] == "member_removed"
    # Rejoining does not bring the key back.
    with kernel.db.transaction() as db:
        db.add(Membership(org_id=world.a.org.id, user_id=dev.id, role="developer"))
    assert client.get(f"{API}/orgs/acme", headers=key).status_code == 401


def test_leave(client, kernel, world):
    viewer = world.a.users["viewer"]
    key = make_key(kernel, viewer, world.a.org, ["read"])
    h = world.a.sessions["viewer"]
    r = client.post(f"{API}/orgs/acme/leave", headers=h)
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/orgs/acme", headers=h).status_code == 404
    assert client.get(f"{API}/orgs/acme", headers=key).status_code == 401
    assert events_of(kernel, "member.removed")[-1]["reason"] == "left"
    assert client.post(f"{API}/orgs/acme/leave", headers=h).status_code == 404


def test_leave_refuses_read_key(client, world):
    # orgs_leave only needs org.read, but a read key changes nothing.
    r = client.post(f"{API}/orgs/acme/leave", headers=world.a.keys["read"])
    assert r.status_code == 403, r.text


def test_unknown_or_foreign_member_is_404(client, world):
    h = world.a.sessions["owner"]
    foreign = world.b.users["viewer"]
    for r in (
        client.patch(f"{MEMBERS}/{foreign.id}", json={"role": "viewer"}, headers=h),
        client.delete(f"{MEMBERS}/{foreign.id}", headers=h),
        client.patch(f"{MEMBERS}/999999", json={"role": "viewer"}, headers=h),
    ):
        assert r.status_code == 404, r.text
        assert "globex" not in r.text and "viewer@" not in r.text
    assert client.get(f"{API}/orgs/globex/members", headers=h).status_code == 404


@pytest.mark.parametrize("role", ["superadmin", "Owner", "", "root", 3, None])
def test_bad_role_is_422_naming_role(client, world, role):
    target = world.a.users["viewer"]
    r = client.patch(
        f"{MEMBERS}/{target.id}", json={"role": role}, headers=world.a.sessions["owner"]
    )
    assert_invalid(r, "role")


def test_missing_role_and_bad_path(client, world):
    h = world.a.sessions["owner"]
    target = world.a.users["viewer"]
    assert_invalid(client.patch(f"{MEMBERS}/{target.id}", json={}, headers=h), "role")
    r = client.patch(f"{MEMBERS}/abc", json={"role": "viewer"}, headers=h)
    assert r.status_code in (400, 404, 422), r.text
