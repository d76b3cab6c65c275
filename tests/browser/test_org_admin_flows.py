"""An organization's people and keys in a real browser: an API key shown once, a
member invited through the dashboard who then signs up from the link and sees only
what their role allows, and the audit log filtered. Screenshots of those pages."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import (
    PASSWORD,
    NewContext,
    Panel,
    screenshot,
    screenshots,
    sign_in,
)


def _org(panel: Panel, admin: str, slug: str) -> None:
    with panel.session(admin) as api:
        r = api.post("/orgs", json={"slug": slug, "name": slug.title()})
        assert r.status_code == 201, r.text


def test_an_api_key_is_shown_once(
    panel: Panel, admin: str, new_context: NewContext, screenshot_dir: Path
) -> None:
    _org(panel, admin, "keys")
    page = new_context().new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, panel, admin)
    page.goto(panel.url("/orgs/keys/api-keys"))
    expect(page.get_by_test_id("empty-state")).to_contain_text("No API keys yet")

    page.get_by_label("Name").fill("CI deploys")
    page.get_by_role("checkbox", name=re.compile("^Deploy:")).check()
    page.get_by_label("Expires after (days)").fill("5000")
    page.get_by_role("button", name="Create key").click()
    # The API's rule, beside the field; what was typed is kept.
    expect(page.locator("#e-expires_in_days")).to_contain_text("3650")
    expect(page.get_by_label("Name")).to_have_value("CI deploys")
    expect(page.get_by_role("checkbox", name=re.compile("^Deploy:"))).to_be_checked()
    page.get_by_label("Expires after (days)").fill("30")
    page.get_by_role("button", name="Create key").click()

    shown = page.get_by_test_id("new-key")
    expect(shown).to_be_visible()
    key = shown.inner_text().strip()
    assert key.startswith("gk"), key
    screenshot(page, "api-key-created-desktop-light", screenshot_dir)
    members = httpx.get(
        panel.url("/api/v1/orgs/keys/members"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert members.status_code == 200, members.text

    # Never again: not on the list, not after a reload of the page.
    page.goto(panel.url("/orgs/keys/api-keys"))
    row = page.get_by_test_id("keys").locator("tbody tr", has_text="CI deploys")
    expect(row).to_contain_text("read, deploy")
    expect(row).to_contain_text("active")
    assert key not in page.content()

    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id("flash")).to_contain_text("The API key was revoked.")
    expect(page.get_by_test_id("keys").locator("tbody tr", has_text="CI deploys")).to_contain_text(
        "revoked"
    )
    refused = httpx.get(
        panel.url("/api/v1/orgs/keys/members"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert refused.status_code == 401


def test_an_invited_member_sees_only_what_their_role_allows(
    panel: Panel, admin: str, new_context: NewContext, screenshot_dir: Path
) -> None:
    _org(panel, admin, "acme")
    _org(panel, admin, "globex")
    page = new_context().new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, panel, admin)
    page.goto(panel.url("/orgs/acme/invitations"))
    page.get_by_label("Their email").fill("viewer@example.com")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create invitation").click()
    link = page.get_by_test_id("invitation-link").inner_text().strip()
    assert "/invitations/accept?token=" in link, link
    expect(page.get_by_test_id("invitations")).to_contain_text("viewer@example.com")
    screenshot(page, "invitation-created-desktop-light", screenshot_dir)

    # The invited person opens the link in their own browser, on a phone.
    invitee = new_context(viewport={"width": 360, "height": 740}, color_scheme="dark").new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="You are invited")).to_be_visible()
    expect(invitee.get_by_test_id("offer")).to_contain_text("to join Acme")
    expect(invitee.get_by_test_id("offer")).to_contain_text("as viewer")
    screenshot(invitee, "invitation-accept-mobile-dark", screenshot_dir)
    invitee.get_by_label("Your name (optional)").fill("Vera Viewer")
    invitee.get_by_label("Choose a password").fill(PASSWORD)
    invitee.get_by_label("The password again").fill(PASSWORD)
    invitee.get_by_role("button", name="Create my account and join").click()
    invitee.wait_for_url(panel.url("/orgs/acme"))
    expect(invitee.get_by_test_id("flash")).to_contain_text("you joined as viewer")

    # Members: visible, but no control to change anything.
    invitee.goto(panel.url("/orgs/acme/members"))
    expect(invitee.get_by_test_id("my-role")).to_have_text("viewer")
    expect(invitee.get_by_test_id("members")).to_contain_text(admin)
    expect(invitee.get_by_role("button", name="Change role")).to_have_count(0)
    expect(invitee.get_by_role("button", name="Remove")).to_have_count(0)
    # What only admins may see is refused, and the page says what to do.
    for path in ("/orgs/acme/audit", "/orgs/acme/invitations"):
        answer = invitee.goto(panel.url(path))
        assert answer is not None and answer.status == 403, path
        expect(invitee.get_by_role("heading", name="Not allowed")).to_be_visible()
    # Their own API key: a read key yes, an admin key no (the API's message shown).
    invitee.goto(panel.url("/orgs/acme/api-keys"))
    invitee.get_by_label("Name").fill("my laptop")
    invitee.get_by_role("checkbox", name=re.compile("^Admin:")).check()
    invitee.get_by_role("button", name="Create key").click()
    expect(invitee.get_by_test_id("error")).to_be_visible()
    expect(invitee.get_by_test_id("new-key")).to_have_count(0)
    # Another organization does not exist for them.
    answer = invitee.goto(panel.url("/orgs/globex/members"))
    assert answer is not None and answer.status == 404
    expect(invitee.get_by_role("heading", name="Not found")).to_be_visible()
    assert "Globex" not in invitee.content()

    # The admin sees the new member and makes them a developer.
    page.goto(panel.url("/orgs/acme/members"))
    row = page.get_by_test_id("member-viewer@example.com")
    expect(row).to_contain_text("Vera Viewer")
    screenshots(page, "org-members-new-member", screenshot_dir, variants=("desktop-light",))
    row.get_by_label("Role of viewer@example.com").select_option("developer")
    row.get_by_role("button", name="Change role").click()
    expect(page.get_by_test_id("flash")).to_contain_text("viewer@example.com is now developer")
    invitee.goto(panel.url("/orgs/acme/members"))
    expect(invitee.get_by_test_id("my-role")).to_have_text("developer")


def test_the_audit_log_filtered(panel: Panel, admin: str, new_context: NewContext) -> None:
    _org(panel, admin, "audited")
    with panel.session(admin) as api:
        r = api.post("/orgs/audited/invitations", json={"email": "a@example.com", "role": "viewer"})
        assert r.status_code == 201, r.text
        r = api.post("/orgs/audited/api-keys", json={"name": "ci", "scopes": ["read"]})
        assert r.status_code == 201, r.text
    page = new_context().new_page()
    sign_in(page, panel, admin)
    page.goto(panel.url("/orgs/audited/audit"))
    table = page.get_by_test_id("audit")
    expect(table).to_contain_text("invitations_create")
    expect(table).to_contain_text("api_keys_create")

    page.get_by_label("Action").fill("invitations_*")
    page.get_by_label("Outcome").select_option("success")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"action=invitations_"))
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("invitations_create")
    expect(page.get_by_label("Action")).to_have_value("invitations_*")

    page.get_by_label("Action").fill("")
    page.get_by_label("From (date)").fill("2001-01-01")
    page.get_by_label("Until (date, included)").fill("2001-12-31")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("No entry matches")
    page.get_by_role("button", name="Clear filters").click()
    expect(page.get_by_test_id("audit")).to_contain_text("api_keys_create")
