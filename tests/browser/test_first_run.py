"""A newcomer's first minutes, in a real browser: the one-time setup link that
``gakwaya serve`` prints, the first administrator, then signing in to the
dashboard. And the same forms without a mouse."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD, Panel, sign_in

FOCUS_STATE = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {
        name: el.getAttribute('name') || el.tagName.toLowerCase(),
        tag: el.tagName.toLowerCase(),
        focusVisible: el.matches(':focus-visible'),
        outlineStyle: style.outlineStyle,
        outlineWidth: style.outlineWidth,
        boxShadow: style.boxShadow,
    };
}"""


def focus_is_visible(state: dict[str, str]) -> bool:
    """A focus ring the user can see: an outline of some width, or a box shadow."""
    outline = state["outlineStyle"] != "none" and state["outlineWidth"] not in ("0px", "")
    return bool(state["focusVisible"]) and (outline or state["boxShadow"] != "none")


def test_setup_link_creates_the_admin_who_then_signs_in(fresh_panel: Panel, page: Page) -> None:
    assert fresh_panel.setup_url, fresh_panel.stdout
    page.goto(fresh_panel.setup_url)
    expect(page.get_by_role("heading", name="Set up Gakwaya")).to_be_visible()

    # The two passwords must match: the page says so and keeps what was typed.
    page.get_by_label("Email").fill("founder@example.com")
    page.get_by_label(re.compile(r"^Password \(at least")).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD + " typo")
    page.get_by_role("button", name="Create administrator").click()
    expect(page.get_by_role("alert")).to_contain_text("the two passwords differ")
    expect(page.get_by_label("Email")).to_have_value("founder@example.com")

    page.get_by_label(re.compile(r"^Password \(at least")).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    expect(page.get_by_role("heading", name="Administrator created")).to_be_visible()
    expect(page.get_by_text("founder@example.com")).to_be_visible()

    # The link worked once.
    page.goto(fresh_panel.setup_url)
    expect(page.get_by_role("heading", name="Already set up")).to_be_visible()

    fresh_panel.passwords["founder@example.com"] = PASSWORD
    sign_in(page, fresh_panel, "founder@example.com")
    assert page.url == fresh_panel.url("/")
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    expect(page.get_by_test_id("account-link")).to_be_visible()
    page.get_by_test_id("account-link").click()
    expect(page.get_by_test_id("account-facts")).to_contain_text("founder@example.com")


def test_setup_and_sign_in_with_the_keyboard_only(fresh_panel: Panel, page: Page) -> None:
    """Tab reaches every field and the button in reading order, each with a visible
    focus ring; typing and Enter do the rest."""
    assert fresh_panel.setup_url
    page.goto(fresh_panel.setup_url)
    typed = {
        "email": "keys@example.com",
        "name": "Keyboard User",
        "password": PASSWORD,
        "password2": PASSWORD,
    }
    order = []
    for _ in range(len(typed) + 1):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        assert focus_is_visible(state), state
        order.append(state["name"])
        if state["name"] in typed:
            page.keyboard.type(typed[state["name"]])
    assert order == ["email", "name", "password", "password2", "button"], order
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Administrator created")).to_be_visible()

    # The dashboard's sign-in form, the same way.
    page.goto(fresh_panel.url("/login"))
    reached: list[str] = []
    for _ in range(20):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        reached.append(state["name"])
        if state["name"] == "email":
            assert focus_is_visible(state), state
            page.keyboard.type("keys@example.com")
        elif state["name"] == "password":
            assert focus_is_visible(state), state
            page.keyboard.type(PASSWORD)
        elif state["tag"] == "button" and {"email", "password"} <= set(reached):
            assert focus_is_visible(state), state
            break
    else:
        raise AssertionError(f"Tab never reached the sign-in button: {reached}")
    assert reached.index("email") < reached.index("password"), reached
    page.keyboard.press("Enter")
    page.wait_for_url(fresh_panel.url("/"))
    expect(page.get_by_test_id("account-link")).to_have_text("Keyboard User")
