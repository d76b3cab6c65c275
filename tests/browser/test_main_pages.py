"""Every main page of the dashboard in a real browser, on a panel with an
organization, a project, an app (not deployed), a secret variable and a domain:

- it answers 200 and draws without a script error or a Content-Security-Policy
  violation (the browser reports both on its console);
- nothing is wider than a 360 px screen (tables scroll inside their own box);
- its screenshots, desktop and mobile, light and dark (``docs/screenshots/`` with
  ``GAKWAYA_TEST_SCREENSHOTS=1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page

from tests.browser.conftest import (
    MOBILE,
    NewContext,
    Panel,
    create_image_app,
    screenshots,
)

#: path template -> (screenshot name, variants).
ALL = ("desktop-light", "desktop-dark", "mobile-light", "mobile-dark")
TWO = ("desktop-light", "mobile-dark")
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/": ("home", ALL),
    "/orgs/new": ("org-new", TWO),
    "/orgs/acme": ("org-overview", ALL),
    "/orgs/acme/projects/web": ("project", TWO),
    "/orgs/acme/apps/{app}": ("app-overview", ALL),
    "/orgs/acme/apps/{app}/deploy": ("app-deploy", TWO),
    "/orgs/acme/apps/{app}/deployments": ("app-deployments", TWO),
    "/orgs/acme/apps/{app}/releases": ("app-releases", TWO),
    "/orgs/acme/apps/{app}/env": ("app-env", ALL),
    "/orgs/acme/apps/{app}/domains": ("app-domains", ALL),
    "/orgs/acme/apps/{app}/logs": ("app-logs", TWO),
    "/orgs/acme/apps/{app}/stats": ("app-stats", TWO),
    "/orgs/acme/members": ("org-members", TWO),
    "/orgs/acme/invitations": ("org-invitations", TWO),
    "/orgs/acme/api-keys": ("org-api-keys", TWO),
    "/orgs/acme/audit": ("org-audit", TWO),
    "/account": ("account-profile", TWO),
    "/account/password": ("account-password", TWO),
    "/account/2fa": ("account-2fa", TWO),
    "/account/sessions": ("account-sessions", TWO),
    "/plugins": ("plugins", ALL),
}


@pytest.fixture(scope="module")
def app_id(panel: Panel, admin: str) -> int:
    with panel.session(admin) as api:
        for method, path, body in (
            ("POST", "/orgs", {"slug": "acme", "name": "Acme"}),
            ("POST", "/orgs/acme/projects", {"name": "web"}),
            ("POST", "/orgs/acme/projects/web/environments", {"name": "production"}),
        ):
            r = api.request(method, path, json=body)
            assert r.status_code in (201, 409), r.text
        app = create_image_app(api, "acme", "web", "shop", image="nginx:1.27-alpine")
        r = api.patch(
            f"/orgs/acme/apps/{app}/env",
            json={
                "vars": {
                    "DATABASE_URL": {"value": "postgres://shop:hunter2@db/shop", "secret": True},
                    "LOG_LEVEL": {"value": "info"},
                }
            },
        )
        assert r.status_code == 200, r.text
        r = api.post(f"/orgs/acme/apps/{app}/domains", json={"name": "shop.example.com"})
        assert r.status_code == 201, r.text
        return app


class Console:
    """What the browser reported: script errors and CSP violations."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        page.on("console", self._message)

    def _message(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.problems.append(f"CSP: {message.text}")


@pytest.mark.parametrize("template", list(PAGES))
def test_main_page(
    template: str,
    panel: Panel,
    admin: str,
    app_id: int,
    signed_in: Any,
    new_context: NewContext,
    screenshot_dir: Path,
) -> None:
    path = template.format(app=app_id)
    name, variants = PAGES[template]
    page = new_context(storage_state=signed_in).new_page()
    console = Console(page)
    answer = page.goto(panel.url(path))
    assert answer is not None and answer.status == 200, f"{path}: {answer and answer.status}"
    assert page.locator("main h1").count() >= 1, f"{path} has no heading"
    assert "hunter2" not in page.content()  # a secret value is never on a page

    # The pictures first: they help most when a check below fails.
    screenshots(page, name, screenshot_dir, variants=variants)

    small = new_context(viewport=MOBILE, storage_state=signed_in).new_page()
    small.goto(panel.url(path))
    overflow = small.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{path} is {overflow}px wider than a 360px screen"
    assert not console.problems, console.problems
