"""The account in a real browser: two-factor enrolment from the QR code's page with a
real TOTP code (computed here, as an authenticator app would), the recovery codes
shown once, then signing in with the second factor. Screenshots of the account
pages, desktop and mobile, light and dark."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    PASSWORD,
    NewContext,
    Panel,
    screenshot,
    screenshots,
    sign_in,
)


def test_enrol_two_factor_and_sign_in_with_it(
    panel: Panel, new_context: NewContext, screenshot_dir: Path
) -> None:
    # A person of their own: the module's other tests sign the administrator in
    # with a password only.
    person = panel.create_member("twofa", "twofa@example.com")
    page = new_context().new_page()
    sign_in(page, panel, person)
    page.get_by_test_id("account-link").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_role("link", name="Two-factor authentication").click()
    expect(page.get_by_test_id("2fa-status")).to_contain_text("Off")

    # A wrong password is named beside the field.
    page.get_by_label("Your password").fill("not my password at all")
    page.get_by_role("button", name="Set up two-factor authentication").click()
    expect(page.locator("#e-password")).to_contain_text("is not your current password")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Set up two-factor authentication").click()

    qr = page.get_by_test_id("totp-qr")
    expect(qr).to_be_visible()
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    box = qr.bounding_box()
    assert box and box["width"] >= 200 and box["height"] >= 200
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    screenshot(page, "account-2fa-qr-desktop-light", screenshot_dir)
    totp = pyotp.TOTP(secret)

    page.get_by_label("The 6-digit code the app shows now").fill("000000")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.locator("#e-code")).to_be_visible()
    expect(page.get_by_test_id("totp-qr")).to_be_visible()  # the same code, to try again
    page.get_by_label("The 6-digit code the app shows now").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()

    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text().strip()
    assert re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", recovery), recovery
    expect(page.get_by_text("shown only this once")).to_be_visible()
    screenshot(page, "account-recovery-codes-desktop-light", screenshot_dir)
    page.get_by_role("button", name="I have saved them").click()
    expect(page.get_by_test_id("2fa-status")).to_contain_text("On")
    expect(page.get_by_text(recovery)).to_have_count(0)

    # Another browser: password, then the second factor. The code that confirmed the
    # enrolment cannot be replayed, so the app's next one is used.
    other = new_context().new_page()
    other.goto(panel.url("/login"))
    other.get_by_label("Email").fill(person)
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url(re.compile(r"/login/2fa"))
    other.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
    other.get_by_role("button", name="Verify").click()
    other.wait_for_url(panel.url("/"))
    expect(other.get_by_role("heading", name="Your organizations")).to_be_visible()

    # The first browser lists both sessions and signs the other one out.
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(panel.url("/account/sessions"))
    rows = page.get_by_test_id("sessions").locator("tbody tr")
    expect(rows).to_have_count(2)
    screenshots(page, "account-sessions-two-browsers", screenshot_dir, variants=("desktop-light",))
    rows.filter(has_not_text="(this browser)").get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("flash")).to_contain_text("The session is signed out.")
    expect(page.get_by_test_id("sessions").locator("tbody tr")).to_have_count(1)
    other.reload()
    expect(other).to_have_url(re.compile(r"/login\?next="))


def test_account_pages_at_360_pixels(panel: Panel, admin: str, new_context: NewContext) -> None:
    """Readable on a small phone: nothing wider than the screen."""
    page = new_context(viewport={"width": 360, "height": 740}).new_page()
    sign_in(page, panel, admin)
    for path in ("/account", "/account/password", "/account/2fa", "/account/sessions"):
        page.goto(panel.url(path))
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a 360px screen"


def test_password_form_with_the_keyboard(panel: Panel, admin: str, page: Page) -> None:
    sign_in(page, panel, admin)
    page.goto(panel.url("/account/password"))
    page.locator("#f-current_password").focus()
    page.keyboard.type("wrong password here")
    page.keyboard.press("Tab")
    page.keyboard.type("a new passphrase 12345")
    page.keyboard.press("Tab")
    page.keyboard.type("a new passphrase 12345")
    page.keyboard.press("Enter")
    expect(page.locator("#e-current_password")).to_contain_text("is not your current password")
    expect(page.locator("#f-current_password")).to_have_attribute("aria-invalid", "true")
