"""The dashboard without a mouse: the issue's "works without a mouse (labels, focus
order, visible focus)", in a real browser, pressing only Tab, Shift+Tab, Enter and
Space (and typing into fields).

- A newcomer's journey: sign in, the skip link and the main navigation, a new
  organization, a project and its description, then an app (made through the API)
  opened from the overview, its pages through the app navigation, a variable added
  and a domain's limits changed.
- A tour of every main page: Tab through all its focus stops.

At every focus stop the focused element must show a focus ring the user can see
(an outline at least 2 px wide whose colour stands out from the page at 3:1, the
WCAG contrast for non-text), lie on the screen, and come in reading order (skip
link, main navigation, organization navigation, the page). On every page reached,
each form control and link must have an accessible name, as Chromium's
accessibility tree computes it, and each field a label; no positive tabindex
reorders the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewContext, Panel, create_image_app

#: What the focused element is and how its focus shows; None when nothing has focus.
FOCUS = """() => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    const labelled = el.labels && el.labels.length ? el.labels[0].textContent : '';
    const text = el.getAttribute('aria-label') || labelled || el.textContent || el.value || '';
    let region = 'other';
    if (el.classList.contains('skip-link')) region = 'skip';
    else if (el.closest('nav[aria-label="Main"]')) region = 'main-nav';
    else if (el.closest('nav[aria-label="Organization"]')) region = 'org-nav';
    else if (el.closest('main')) region = 'main';
    else if (el.closest('footer')) region = 'footer';
    const rgba = (value) => {
        const m = value.match(/rgba?\\(([^)]+)\\)/);
        if (!m) return null;
        const parts = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
        return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    let bg = null;
    for (let node = document.body; node && !bg; node = node.parentElement) {
        const c = rgba(getComputedStyle(node).backgroundColor);
        if (c && c[3] > 0) bg = c;
    }
    bg = bg || [255, 255, 255, 1];
    const ring = rgba(style.outlineColor) || [0, 0, 0, 0];
    // The ring's colour as drawn over the page (its alpha blended in), then the
    // contrast ratio of WCAG 2 between the two.
    const drawn = ring.slice(0, 3).map((v, i) => v * ring[3] + bg[i] * (1 - ring[3]));
    const lum = (c) => {
        const [r, g, b] = c.map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [hi, lo] = [lum(drawn), lum(bg.slice(0, 3))].sort((a, b) => b - a);
    return {
        tag: el.tagName.toLowerCase(),
        type: el.getAttribute('type') || '',
        name: el.getAttribute('name') || '',
        id: el.id,
        href: el.getAttribute('href') || '',
        role: el.getAttribute('role') || '',
        text: text.replace(/\\s+/g, ' ').trim().slice(0, 80),
        region,
        // A field's focus may be inside it (a date field's calendar button): the
        // field itself then matches :focus-within only.
        focusVisible: el.matches(':focus-visible')
            || (el.matches('input, select, textarea') && el.matches(':focus-within')),
        outlineStyle: style.outlineStyle,
        outlineWidth: parseFloat(style.outlineWidth) || 0,
        ringContrast: Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100,
        onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
            && box.top < window.innerHeight && box.left < window.innerWidth,
        checked: el.checked === true,
    };
}"""

#: Fields without a label, and positive tabindex values (they reorder the page).
LABEL_PROBLEMS = """() => {
    const problems = [];
    const named = (ids) => (ids || '').split(/\\s+/).filter(Boolean)
        .some((id) => (document.getElementById(id)?.textContent || '').trim());
    for (const el of document.querySelectorAll('input, select, textarea')) {
        if (el.type === 'hidden') continue;
        const label = [...(el.labels || [])].some((l) => l.textContent.trim());
        if (!label && !named(el.getAttribute('aria-labelledby'))
            && !(el.getAttribute('aria-label') || '').trim()) {
            problems.push('no label: ' + el.outerHTML.slice(0, 160));
        }
    }
    for (const el of document.querySelectorAll('[tabindex]')) {
        if (el.tabIndex > 0) problems.push('positive tabindex: ' + el.outerHTML.slice(0, 160));
    }
    return problems;
}"""

#: Roles of the accessibility tree that a keyboard user operates.
CONTROL_ROLES = {
    "button",
    "checkbox",
    "combobox",
    "link",
    "listbox",
    "menuitem",
    "radio",
    "searchbox",
    "slider",
    "spinbutton",
    "switch",
    "tab",
    "textbox",
}
#: Regions in reading order: focus never goes back to an earlier one.
READING_ORDER = ("skip", "main-nav", "org-nav", "main", "footer")
#: The ring must stand out from the page at least this much (WCAG 2.2, 1.4.11).
MIN_CONTRAST = 3.0
MIN_RING_PX = 2.0
MAX_STOPS = 250


def ring_problem(state: dict[str, Any]) -> str | None:
    """Why the focused element's focus is not visible enough, or None."""
    if not state["focusVisible"]:
        return "does not match :focus-visible"
    if state["outlineStyle"] == "none" or state["outlineWidth"] < MIN_RING_PX:
        return f"no focus ring of {MIN_RING_PX}px ({state['outlineStyle']} {state['outlineWidth']})"
    if state["ringContrast"] < MIN_CONTRAST:
        return f"focus ring contrast {state['ringContrast']} < {MIN_CONTRAST}"
    if not state["onScreen"]:
        return "off screen"
    return None


def describe(state: dict[str, Any] | None) -> str:
    if state is None:
        return "(nothing)"
    what = state["name"] or state["href"] or state["id"]
    return f"{state['region']}:{state['tag']}[{what}] {state['text']!r}"


class Keys:
    """One page driven by the keyboard only, checking every focus stop."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Accessibility.enable")
        self.stops: list[str] = []

    def focused(self) -> dict[str, Any] | None:
        state: dict[str, Any] | None = self.page.evaluate(FOCUS)
        return state

    def press(self, key: str) -> dict[str, Any] | None:
        """Press ``key``; the element that then has focus, checked."""
        self.page.keyboard.press(key)
        state = self.focused()
        if state is not None and key in ("Tab", "Shift+Tab"):
            self.stops.append(describe(state))
            problem = ring_problem(state)
            assert problem is None, f"{self.page.url}: {describe(state)}: {problem}: {state}"
        return state

    def tab_to(
        self, wanted: Callable[[dict[str, Any]], bool], what: str, *, back: bool = False
    ) -> dict[str, Any]:
        """Tab (or Shift+Tab) until the focused element is ``wanted``."""
        start = len(self.stops)
        for _ in range(MAX_STOPS):
            state = self.press("Shift+Tab" if back else "Tab")
            if state is not None and wanted(state):
                return state
        raise AssertionError(f"{what} never got focus; stops: {self.stops[start:]}")

    def tab_to_field(self, label: str) -> dict[str, Any]:
        return self.tab_to(
            lambda s: s["tag"] in ("input", "select", "textarea") and s["text"].startswith(label),
            f"the field {label!r}",
        )

    def tab_to_link(self, href_end: str, *, region: str | None = None) -> dict[str, Any]:
        return self.tab_to(
            lambda s: (
                s["tag"] == "a"
                and s["href"].endswith(href_end)
                and (region is None or s["region"] == region)
            ),
            f"the link to {href_end}",
        )

    def fill(self, label: str, text: str) -> None:
        self.tab_to_field(label)
        self.page.keyboard.type(text)

    def activate(self, key: str = "Enter", *, navigates: bool = True) -> None:
        """Press Enter or Space on the focused element, waiting for the next page."""
        if navigates:
            with self.page.expect_navigation():
                self.page.keyboard.press(key)
            self.page.wait_for_load_state()
            self.check_page()
        else:
            self.page.keyboard.press(key)

    def tour(self) -> list[str]:
        """Tab from the top of the page through every focus stop until focus leaves
        the page, checking each, and that they come in reading order."""
        self.page.evaluate("() => document.activeElement && document.activeElement.blur()")
        start = len(self.stops)
        regions: list[str] = []
        for _ in range(MAX_STOPS):
            state = self.press("Tab")
            if state is None or (regions and state["region"] == "skip"):
                break  # focus left the page (or came round to its start again)
            regions.append(state["region"])
        else:
            raise AssertionError(f"{self.page.url}: more than {MAX_STOPS} focus stops")
        stops = self.stops[start:]
        assert stops, f"{self.page.url}: nothing takes focus"
        assert regions[0] == "skip", f"{self.page.url}: the first stop is {stops[0]}"
        ranks = [READING_ORDER.index(r) if r in READING_ORDER else -1 for r in regions]
        assert -1 not in ranks, f"{self.page.url}: a stop outside every region: {stops}"
        assert ranks == sorted(ranks), f"{self.page.url}: focus goes back up: {stops}"
        return stops

    def check_page(self) -> None:
        """Every control has an accessible name and every field a label."""
        problems: list[str] = self.page.evaluate(LABEL_PROBLEMS)
        tree = self.cdp.send("Accessibility.getFullAXTree")
        controls = 0
        for node in tree["nodes"]:
            role = (node.get("role") or {}).get("value")
            if node.get("ignored") or role not in CONTROL_ROLES:
                continue
            controls += 1
            if not str((node.get("name") or {}).get("value") or "").strip():
                problems.append(f"{role} without a name: {self._html(node)}")
        assert controls, f"{self.page.url}: no control in the accessibility tree"
        assert not problems, f"{self.page.url}: {problems}"

    def _html(self, node: dict[str, Any]) -> str:
        backend = node.get("backendDOMNodeId")
        if backend is None:
            return str(node.get("nodeId"))
        try:
            described = self.cdp.send("DOM.describeNode", {"backendNodeId": backend})
        except Exception:
            return f"node {backend}"
        info = described["node"]
        return f"<{info.get('localName')} {info.get('attributes')}>"


@pytest.fixture
def keys(new_context: NewContext) -> Iterator[Keys]:
    """The journey's page, in the dark scheme (the tour of every page is light): the
    focus ring's colour differs between the two. Reduced motion: Pico's transitions
    would otherwise be caught half-way."""
    yield Keys(new_context(color_scheme="dark", reduced_motion="reduce").new_page())


# A newcomer's journey -----------------------------------------------------------------------


def test_newcomer_journey_with_the_keyboard_only(panel: Panel, admin: str, keys: Keys) -> None:
    page = keys.page
    page.goto(panel.url("/login"))
    keys.check_page()
    first = keys.press("Tab")
    assert first is not None and first["region"] == "skip", first
    assert first["text"] == "Skip to content"
    keys.fill("Email", admin)
    keys.fill("Password", panel.passwords[admin])
    keys.tab_to(lambda s: s["tag"] == "button" and s["text"] == "Sign in", "the sign-in button")
    keys.activate()
    assert page.url == panel.url("/"), page.url

    # The skip link leads past the navigation, into the page.
    first = keys.press("Tab")
    assert first is not None and first["text"] == "Skip to content", first
    keys.activate(navigates=False)
    assert page.evaluate("() => document.activeElement.id") == "main"
    after = keys.press("Tab")
    assert after is not None and after["region"] == "main", after
    # Backwards, then forwards through the main navigation.
    keys.tab_to(lambda s: s["region"] == "main-nav", "the main navigation", back=True)
    account = keys.tab_to(lambda s: s["href"] == "/account", "the account link")
    assert account["region"] == "main-nav"
    keys.tab_to(lambda s: s["text"] == "Sign out", "the sign-out button")

    # No organization yet: the empty state's link looks like a button, so Space
    # follows it as Enter does.
    keys.tab_to_link("/orgs/new", region="main")
    keys.activate("Space")
    assert page.url == panel.url("/orgs/new"), page.url
    keys.fill("Name", "Keyboard Co")
    slug = keys.tab_to_field("URL name")
    page.keyboard.type("keyboard-co")
    keys.tab_to(lambda s: s["text"] == "Create organization", "the create button")
    back = keys.press("Shift+Tab")
    assert back is not None and back["name"] == slug["name"] == "slug", back
    keys.press("Tab")
    keys.activate()
    assert page.url == panel.url("/orgs/keyboard-co"), page.url
    expect(page.get_by_test_id("flash")).to_contain_text("Organization Keyboard Co created")

    # The first project, with Space on the form's button.
    keys.fill("Project name", "shop")
    keys.fill("Description (optional)", "The shop")
    keys.tab_to(lambda s: s["text"] == "Create project", "the create-project button")
    keys.activate("Space")
    expect(page.get_by_test_id("flash")).to_contain_text("Project shop created")

    # An app of that project, made through the API; the overview then lists it.
    with panel.session(admin) as api:
        app = create_image_app(api, "keyboard-co", "shop", "web", image="gakwaya-test/absent:1")
        r = api.post(f"/orgs/keyboard-co/apps/{app}/domains", json={"name": "keys.example.com"})
        assert r.status_code == 201, r.text

    # The project's page, its description changed with the keyboard.
    keys.tab_to_link("/orgs/keyboard-co/projects/shop", region="main")
    keys.activate()
    keys.tab_to_field("Description")
    page.keyboard.type("The shop, open all night")  # Tab selected what was there
    keys.activate()  # Enter in a field sends its form
    expect(page.get_by_test_id("flash")).to_have_text("Description saved.")
    expect(page.locator("main")).to_contain_text("The shop, open all night")

    # Back to the overview through the breadcrumb, then the app.
    keys.tab_to_link("/orgs/keyboard-co", region="main")
    keys.activate()
    keys.tab_to_link(f"/orgs/keyboard-co/apps/{app}", region="main")
    keys.activate()
    expect(page.get_by_test_id("app-name")).to_have_text("web")

    # The app's pages through the app navigation.
    base = f"/orgs/keyboard-co/apps/{app}"
    for tab, heading in (("/deployments", "Deployments"), ("/settings", "Settings")):
        keys.tab_to_link(base + tab, region="main")
        keys.activate()
        expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        current = page.locator('nav[aria-label="App"] a[aria-current="page"]')
        expect(current).to_have_attribute("href", base + tab)

    # A secret variable: type, tick the box with Space, send with Enter.
    keys.tab_to_link(base + "/env", region="main")
    keys.activate()
    keys.fill("Name", "GREETING")
    keys.fill("Value", "hello")
    secret = keys.tab_to(lambda s: s["type"] == "checkbox" and s["name"] == "secret", "Secret")
    assert not secret["checked"]
    page.keyboard.press("Space")
    ticked = keys.focused()
    assert ticked is not None and ticked["name"] == "secret" and ticked["checked"], ticked
    keys.tab_to(lambda s: s["text"] == "Save variable", "the save button")
    keys.activate()
    expect(page.get_by_test_id("flash")).to_have_text("GREETING saved.")
    expect(page.get_by_test_id("env-vars")).to_contain_text("GREETING")
    expect(page.get_by_test_id("env-vars")).to_contain_text("(secret)")

    # A domain's limits: open its options with Enter, change one, send.
    keys.tab_to_link(base + "/domains", region="main")
    keys.activate()
    keys.tab_to(lambda s: s["tag"] == "summary", "the domain's options")
    keys.activate(navigates=False)
    keys.check_page()  # the fields it showed
    keys.fill("Largest request body (MiB)", "25")
    keys.tab_to(lambda s: s["text"] == "Save options", "the save button")
    keys.activate()
    expect(page.get_by_test_id("flash")).to_have_text("Options of keys.example.com saved.")
    expect(page.get_by_test_id("limits-of-domain")).to_contain_text("up to 25 MiB")


# Every main page -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tour(panel: Panel, admin: str) -> dict[str, Any]:
    """An organization with a project, an image app (never deployed), a variable and a
    domain; the paths of the main pages it has."""
    with panel.session(admin) as api:
        for path, body in (
            ("/orgs", {"slug": "tour", "name": "Tour"}),
            ("/orgs/tour/projects", {"name": "web", "description": "The web site"}),
        ):
            r = api.post(path, json=body)
            assert r.status_code == 201, r.text
        app = create_image_app(api, "tour", "web", "site", image="gakwaya-test/absent:1")
        r = api.patch(f"/orgs/tour/apps/{app}/env", json={"vars": {"LOG_LEVEL": {"value": "info"}}})
        assert r.status_code == 200, r.text
        r = api.post(f"/orgs/tour/apps/{app}/domains", json={"name": "tour.example.com"})
        assert r.status_code == 201, r.text
    base = f"/orgs/tour/apps/{app}"
    return {
        "paths": [
            "/",
            "/orgs/new",
            "/orgs/tour",
            "/orgs/tour/projects/web",
            base,
            *(
                f"{base}/{tab}"
                for tab in (
                    "deploy",
                    "deployments",
                    "releases",
                    "env",
                    "domains",
                    "logs",
                    "stats",
                    "settings",
                )
            ),
            "/orgs/tour/members",
            "/orgs/tour/invitations",
            "/orgs/tour/api-keys",
            "/orgs/tour/audit",
            "/account",
            "/account/password",
            "/account/2fa",
            "/account/sessions",
            "/plugins",
        ]
    }


def test_every_main_page_tabs_in_order_with_visible_focus_and_named_controls(
    panel: Panel, tour: dict[str, Any], signed_in: Any, new_context: NewContext
) -> None:
    keys = Keys(new_context(storage_state=signed_in, reduced_motion="reduce").new_page())
    visited = {}
    for path in tour["paths"]:
        answer = keys.page.goto(panel.url(path))
        assert answer is not None and answer.status == 200, f"{path}: {answer and answer.status}"
        keys.page.wait_for_load_state()
        keys.check_page()
        visited[path] = keys.tour()
    # Each page took focus past its navigation into its own content.
    for path, stops in visited.items():
        assert any(s.startswith("main:") for s in stops), (path, stops)
