"""Members and roles, invitations (and accepting one), API keys and the audit log,
through the dashboard's forms against the real API: roles, another organization
(404), CSRF, and the API's messages beside the fields."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from webui_testlib import CSP, browser, csrf_of, sign_in, text_of

from gakwaya.db.models import ApiKey, Invitation, Membership
from gakwaya.kernel import Kernel
from tests.conftest import PASSWORD, World, make_user

PAGES = ("members", "invitations", "api-keys", "audit")


def _role(kernel: Kernel, world: World, email: str) -> str | None:
    with kernel.db.session() as db:
        user_id = next(
            u.id for p in (world.a, world.b) for u in p.users.values() if u.email == email
        )
        return db.scalar(
            select(Membership.role).where(
                Membership.org_id == world.a.org.id, Membership.user_id == user_id
            )
        )


def _as(app: Any, email: str) -> Any:
    c = browser(app)
    sign_in(c, email)
    return c


def test_pages_render_for_an_owner(app: Any, client: Any, world: World) -> None:
    c = _as(app, "owner@acme.example.com")
    for name in PAGES:
        r = c.get(f"/orgs/acme/{name}")
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-security-policy"] == CSP
        assert "<script>" not in r.text and " style=" not in r.text
        assert "Globex" not in r.text and "globex.example.com" not in r.text


def test_another_organization_is_a_404(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    c = _as(app, "owner@globex.example.com")
    token = csrf_of(c.get("/").text)
    for name in PAGES:
        r = c.get(f"/orgs/acme/{name}")
        assert r.status_code == 404, name
        assert "Acme" not in r.text and "acme.example.com" not in r.text
    viewer = world.a.users["viewer"]
    for path, data in (
        (f"/orgs/acme/members/{viewer.id}/role", {"role": "admin"}),
        (f"/orgs/acme/members/{viewer.id}/remove", {}),
        ("/orgs/acme/invitations", {"email": "x@example.com", "role": "viewer"}),
        ("/orgs/acme/api-keys", {"name": "x", "scopes": "read"}),
    ):
        r = c.post(path, data={"csrf_token": token, "confirmed": "yes", **data})
        assert r.status_code == 404, path
    assert _role(kernel, world, viewer.email) == "viewer"
    # Not even a name an organization could have reaches the API.
    assert c.get("/orgs/..%2F..%2Faccount/members").status_code == 404


def test_members_and_roles(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    viewer, developer = world.a.users["viewer"], world.a.users["developer"]
    owner = _as(app, "owner@acme.example.com")
    r = owner.get("/orgs/acme/members")
    assert text_of(r.text).count("acme.example.com") >= 4
    assert f'action="/orgs/acme/members/{viewer.id}/role"' in r.text
    assert f'<label for="role-{viewer.id}">' in r.text  # one label per select
    token = csrf_of(r.text)

    # A viewer sees the members but no control.
    seen = _as(app, viewer.email).get("/orgs/acme/members")
    assert seen.status_code == 200 and "developer@acme.example.com" in seen.text
    assert "/role" not in seen.text and "/remove" not in seen.text

    # Without JavaScript, a role change asks first, keeping the chosen role.
    path = f"/orgs/acme/members/{viewer.id}/role"
    r = owner.post(path, data={"csrf_token": token, "role": "developer"})
    assert r.status_code == 200
    assert 'name="confirmed" value="yes"' in r.text and 'name="role" value="developer"' in r.text
    assert _role(kernel, world, viewer.email) == "viewer"
    # Without the CSRF token, nothing changes.
    r = owner.post(path, data={"role": "developer", "confirmed": "yes"})
    assert r.status_code == 403
    assert _role(kernel, world, viewer.email) == "viewer"
    r = owner.post(path, data={"csrf_token": token, "role": "developer", "confirmed": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/orgs/acme/members"
    assert _role(kernel, world, viewer.email) == "developer"
    assert "is now developer" in owner.get("/orgs/acme/members").text

    # An admin cannot make an owner: the API's message is shown.
    admin = _as(app, "admin@acme.example.com")
    r = admin.post(
        f"/orgs/acme/members/{developer.id}/role",
        data={
            "csrf_token": csrf_of(admin.get("/").text),
            "role": "owner",
            "confirmed": "yes",
        },
    )
    assert r.status_code == 403 and 'role="alert"' in r.text
    assert _role(kernel, world, developer.email) == "developer"
    # A role that does not exist: the API names the field.
    r = owner.post(path, data={"csrf_token": token, "role": "god; $(id)", "confirmed": "yes"})
    assert r.status_code == 422 and "role" in text_of(r.text)

    # Remove, confirmed.
    path = f"/orgs/acme/members/{developer.id}/remove"
    r = owner.post(path, data={"csrf_token": token})
    assert r.status_code == 200 and _role(kernel, world, developer.email) == "developer"
    r = owner.post(path, data={"csrf_token": token, "confirmed": "yes"})
    assert r.status_code == 303
    assert _role(kernel, world, developer.email) is None
    assert "developer@acme.example.com" not in owner.get("/orgs/acme/members").text


def test_leave(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    c = _as(app, "viewer@acme.example.com")
    token = csrf_of(c.get("/orgs/acme/members").text)
    r = c.post("/orgs/acme/leave", data={"csrf_token": token, "confirmed": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert _role(kernel, world, "viewer@acme.example.com") is None
    assert c.get("/orgs/acme/members").status_code == 404


def test_invitations(app: Any, client: Any, kernel: Kernel, world: World) -> None:
    admin = _as(app, "admin@acme.example.com")
    r = admin.get("/orgs/acme/invitations")
    assert "No invitations" in r.text
    token = csrf_of(r.text)
    # Roles offered: up to the admin's own.
    assert '<option value="owner"' not in r.text and '<option value="admin"' in r.text

    r = admin.post(
        "/orgs/acme/invitations",
        data={"csrf_token": token, "email": "new; $(id)@x", "role": "viewer"},
    )
    assert r.status_code == 422 and 'id="e-email"' in r.text
    r = admin.post(
        "/orgs/acme/invitations",
        data={"csrf_token": token, "email": "newcomer@example.com", "role": "owner"},
    )
    assert r.status_code == 403 and 'role="alert"' in r.text

    r = admin.post(
        "/orgs/acme/invitations",
        data={"csrf_token": token, "email": "newcomer@example.com", "role": "developer"},
    )
    assert r.status_code == 201
    link = re.search(r'data-testid="invitation-link">([^<]+)<', r.text)
    assert link and "/invitations/accept?token=" in link.group(1)
    assert "shown only this once" in r.text
    listed = admin.get("/orgs/acme/invitations")
    assert "newcomer@example.com" in listed.text
    tok = link.group(1).split("token=", 1)[1]
    assert tok not in listed.text  # the secret link is not on the list

    # A viewer may not see invitations: the API's 403, as a page.
    assert _as(app, "viewer@acme.example.com").get("/orgs/acme/invitations").status_code == 403

    # Revoke, confirmed: the link stops working.
    with kernel.db.session() as db:
        inv_id = db.scalar(select(Invitation.id).where(Invitation.email == "newcomer@example.com"))
    r = admin.post(
        f"/orgs/acme/invitations/{inv_id}/revoke", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert r.status_code == 303
    assert "newcomer@example.com" not in admin.get("/orgs/acme/invitations").text
    r = browser(app).post(
        f"/invite/{tok}/register", data={"password": PASSWORD, "password2": PASSWORD}
    )
    assert r.status_code >= 400 and 'role="alert"' in r.text


def _testid(html: str, name: str) -> str:
    """The text of the element marked ``data-testid=name`` ('' when there is none)."""
    m = re.search(rf'<(\w+)[^>]*data-testid="{name}"[^>]*>(.*?)</\1>', html, re.S)
    return text_of(m.group(2)) if m else ""


def _invite(app: Any, email: str, role: str) -> str:
    owner = _as(app, "owner@acme.example.com")
    token = csrf_of(owner.get("/orgs/acme/invitations").text)
    r = owner.post(
        "/orgs/acme/invitations", data={"csrf_token": token, "email": email, "role": role}
    )
    assert r.status_code == 201, r.text
    m = re.search(r"token=([^<\s\"]+)", r.text)
    assert m
    return m.group(1)


def test_a_newcomer_accepts_with_a_new_account(app: Any, client: Any, world: World) -> None:
    tok = _invite(app, "newbie@example.com", "viewer")
    c = browser(app)
    for path in (f"/invite/{tok}", f"/invitations/accept?token={tok}"):
        r = c.get(path)
        assert r.status_code == 200
        assert f'action="/invite/{tok}/register"' in r.text
        assert "/login?next=%2Finvite%2F" in r.text
        # What the link offers, before joining (the API's invitations_preview).
        offer = _testid(r.text, "offer")
        assert f"invites you to join {world.a.org.name} as viewer" in offer
        assert "sent to newbie@example.com and is valid until" in offer
    r = c.post(
        f"/invite/{tok}/register",
        data={"name": "New Bie", "password": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert r.status_code == 422 and "the two passwords differ" in r.text
    assert 'value="New Bie"' in r.text
    r = c.post(
        f"/invite/{tok}/register",
        data={"name": "New Bie", "password": "short", "password2": "short"},
    )
    assert r.status_code == 422 and 'id="e-password"' in r.text
    r = c.post(
        f"/invite/{tok}/register",
        data={"name": "New Bie", "password": PASSWORD, "password2": PASSWORD},
    )
    assert r.status_code == 303 and r.headers["location"] == "/orgs/acme"
    # Signed in at once, as a viewer of Acme only.
    r = c.get("/orgs/acme/members")
    assert r.status_code == 200 and "Welcome to Acme" in r.text
    assert "/role" not in r.text
    assert c.get("/orgs/acme/audit").status_code == 403
    assert c.get("/orgs/globex/members").status_code == 404


def test_an_existing_user_accepts_while_signed_in(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    user = make_user(kernel, "existing@example.com")
    tok = _invite(app, user.email, "developer")
    # Someone else signed in: the API refuses, the page says why.
    wrong = _as(app, "viewer@globex.example.com")
    r = wrong.post(f"/invite/{tok}/accept", data={"csrf_token": csrf_of(wrong.get("/").text)})
    assert r.status_code == 403 and "another email address" in r.text

    # Opening the link under another account says so, with no button that would fail.
    r = wrong.get(f"/invite/{tok}")
    assert r.status_code == 200 and 'data-testid="other-account"' in r.text
    assert "/accept" not in r.text.split("<main", 1)[1].split("</main>")[0]

    c = _as(app, user.email)
    r = c.get(f"/invite/{tok}")
    assert f'action="/invite/{tok}/accept"' in r.text and user.email in r.text
    r = c.post(f"/invite/{tok}/accept", data={"csrf_token": csrf_of(r.text)})
    assert r.status_code == 303 and r.headers["location"] == "/orgs/acme"
    assert "developer" in c.get("/orgs/acme/members").text
    # The used link now says it was used, and offers nothing.
    r = browser(app).get(f"/invite/{tok}")
    assert r.status_code == 410 and "already been used" in _testid(r.text, "unusable")
    assert "<form" not in r.text.split("<main", 1)[1]


def test_a_revoked_or_wrong_link_says_so_and_offers_no_form(
    app: Any, client: Any, world: World
) -> None:
    tok = _invite(app, "revoked@example.com", "viewer")
    r = client.get("/api/v1/orgs/acme/invitations", headers=world.a.sessions["owner"])
    (inv,) = [i for i in r.json()["items"] if i["email"] == "revoked@example.com"]
    r = client.delete(
        f"/api/v1/orgs/acme/invitations/{inv['id']}", headers=world.a.sessions["owner"]
    )
    assert r.status_code == 204, r.text
    c = browser(app)
    r = c.get(f"/invite/{tok}")
    assert r.status_code == 410 and "revoked" in _testid(r.text, "unusable")
    assert 'data-testid="offer"' not in r.text and "/register" not in r.text
    r = c.get("/invite/not-a-real-token")
    assert r.status_code == 404 and "invitation not found" in _testid(r.text, "unusable")
    assert world.a.org.name not in r.text and "/register" not in r.text


def test_api_keys_created_and_shown_once(
    app: Any, client: Any, kernel: Kernel, world: World
) -> None:
    dev = _as(app, "developer@acme.example.com")
    r = dev.get("/orgs/acme/api-keys")
    assert "No API keys yet" in r.text or "<table" in r.text
    token = csrf_of(r.text)
    form = {"csrf_token": token, "name": "ci deploys", "expires_in_days": "90"}

    r = dev.post("/orgs/acme/api-keys", data={**form, "scopes": ["read", "admin"]})
    assert r.status_code == 403 and 'role="alert"' in r.text
    r = dev.post("/orgs/acme/api-keys", data={**form, "expires_in_days": "5000", "scopes": "read"})
    assert r.status_code == 422
    assert 'id="e-expires_in_days"' in r.text and "3650" in r.text
    assert 'value="ci deploys"' in r.text
    r = dev.post("/orgs/acme/api-keys", data={**form, "name": "", "scopes": "read"})
    assert r.status_code == 422 and 'id="e-name"' in r.text
    r = dev.post("/orgs/acme/api-keys", data={**form, "scopes": []})
    assert r.status_code == 422 and 'id="e-scopes"' in r.text

    r = dev.post("/orgs/acme/api-keys", data={**form, "scopes": ["read", "deploy"]})
    assert r.status_code == 201
    m = re.search(r'data-testid="new-key">([^<]+)<', r.text)
    assert m
    key = m.group(1)
    assert "shown only this once" in r.text
    listed = dev.get("/orgs/acme/api-keys")
    assert "ci deploys" in listed.text and key not in listed.text
    # The key works against the API, with its scopes.
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/orgs/acme/members", headers=bearer).status_code == 200

    # An admin sees every member's keys; a viewer only their own.
    assert "ci deploys" in _as(app, "admin@acme.example.com").get("/orgs/acme/api-keys").text
    assert "ci deploys" not in _as(app, "viewer@acme.example.com").get("/orgs/acme/api-keys").text

    with kernel.db.session() as db:
        key_id = db.scalar(select(ApiKey.id).where(ApiKey.name == "ci deploys"))
    r = dev.post(f"/orgs/acme/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert r.status_code == 200 and 'name="confirmed"' in r.text
    assert client.get("/api/v1/orgs/acme/members", headers=bearer).status_code == 200
    r = dev.post(
        f"/orgs/acme/api-keys/{key_id}/revoke", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert r.status_code == 303
    assert client.get("/api/v1/orgs/acme/members", headers=bearer).status_code == 401
    assert "revoked" in dev.get("/orgs/acme/api-keys").text


def test_audit_log_filters_and_pages(app: Any, client: Any, world: World) -> None:
    owner = _as(app, "owner@acme.example.com")
    token = csrf_of(owner.get("/orgs/acme/api-keys").text)
    for n in range(52):
        r = owner.post(
            "/orgs/acme/api-keys", data={"csrf_token": token, "name": f"k{n}", "scopes": "read"}
        )
        assert r.status_code == 201
    owner.post(
        "/orgs/acme/invitations",
        data={"csrf_token": token, "email": "someone@example.com", "role": "viewer"},
    )

    r = owner.get("/orgs/acme/audit")
    assert r.status_code == 200
    assert "invitations_create" in r.text
    m = re.search(r'href="([^"]+)" rel="next"', r.text)
    assert m, "no link to older entries"
    older = owner.get(m.group(1).replace("&amp;", "&"))
    assert older.status_code == 200 and "api_keys_create" in older.text
    assert "Newest entries" in older.text

    r = owner.get("/orgs/acme/audit?action=invitations_*")
    rows = re.findall(r"<code>([a-z_]+)</code>", r.text)
    assert rows == ["invitations_create"]
    assert 'value="invitations_*"' in r.text

    r = owner.get("/orgs/acme/audit?action=api_keys_create&actor=owner@acme")
    assert len(re.findall(r"<code>api_keys_create</code>", r.text)) == 50
    m = re.search(r'href="([^"]+)" rel="next"', r.text)
    assert m and "action=api_keys_create" in m.group(1) and "actor=owner" in m.group(1)

    r = owner.get("/orgs/acme/audit?actor=nobody-at-all")
    assert "No entry matches these filters." in r.text

    # A bad date: the API's message beside the field, not an error page.
    r = owner.get("/orgs/acme/audit?since=yesterday")
    assert r.status_code == 422 and 'id="e-since"' in r.text

    # Dates: until is the last day included.
    r = owner.get("/orgs/acme/audit?since=2000-01-01&until=2000-01-02")
    assert "No entry matches these filters." in r.text

    # Admin only.
    assert _as(app, "developer@acme.example.com").get("/orgs/acme/audit").status_code == 403


def test_the_key_page_is_not_cached(app: Any, client: Any, world: World) -> None:
    c = _as(app, "owner@acme.example.com")
    r = c.post(
        "/orgs/acme/api-keys",
        data={
            "csrf_token": csrf_of(c.get("/orgs/acme/api-keys").text),
            "name": "x",
            "scopes": "read",
        },
    )
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
