"""Plugins in the dashboard, in a real browser.

- The example third-party plugin (``examples/hello-plugin``, SDK only) adds a page and
  a navigation entry: a member follows the entry and reads the page, drawn inside the
  dashboard's layout from the plugin's own API route.
- A superuser installs that plugin from the marketplace page: its wheel, built from
  the example, published in a signed index on loopback; the install goes into a
  throwaway environment (``GAKWAYA_PLUGIN_PYTHON``) and into ``plugins.lock``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Panel, screenshots, serving, sign_in
from tests.plugins.wheels import (
    SDK_DIR,
    IndexServer,
    build_wheel,
    imported_version,
    make_venv,
    new_key,
    publish,
)

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-plugin"


@pytest.fixture(scope="module")
def hello_panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Panel]:
    """A panel running the example plugin from its source tree (as ``plugin_modules``
    loads a plugin under development); ``gakwaya serve`` migrates its table."""
    path = os.pathsep.join(filter(None, [str(HELLO / "src"), os.environ.get("PYTHONPATH")]))
    with serving(
        tmp_path_factory.mktemp("hello-panel"),
        PYTHONPATH=path,
        GAKWAYA_PLUGIN_MODULES="gakwaya_hello.plugin",
    ) as p:
        yield p


def test_the_example_plugin_adds_a_page_and_a_nav_entry(
    hello_panel: Panel, page: Page, screenshot_dir: Path
) -> None:
    admin = hello_panel.create_admin()
    with hello_panel.session(admin) as api:
        r = api.post("/orgs", json={"slug": "acme", "name": "Acme"})
        assert r.status_code == 201, r.text
        r = api.put(
            "/orgs/acme/plugins/gakwaya-hello/settings", json={"values": {"greeting": "Bonjour"}}
        )
        assert r.status_code == 200, r.text
    sign_in(page, hello_panel, admin)
    page.goto(hello_panel.url("/orgs/acme"))
    entry = page.get_by_role("link", name="Hello", exact=True)
    expect(entry).to_be_visible()
    entry.click()
    page.wait_for_url(hello_panel.url("/p/hello/orgs/acme"))
    expect(page.get_by_role("heading", name="Bonjour, Acme!")).to_be_visible()
    expect(page.get_by_text("Added by the plugin gakwaya-hello")).to_be_visible()
    # Inside the dashboard's layout: its navigation is there, keyboard first.
    expect(page.get_by_role("link", name="Skip to content")).to_be_attached()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    screenshots(page, "plugin-page", screenshot_dir, variants=("desktop-light", "mobile-dark"))
    # Another organization's page of the plugin: the API's 404, shown as such.
    answer = page.goto(hello_panel.url("/p/hello/orgs/globex"))
    assert answer is not None and answer.status == 404


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The example plugin's wheel in a signed index on loopback: (index URL, trusted key)."""
    tmp = tmp_path_factory.mktemp("hello-index")
    wheel = build_wheel(HELLO, tmp / "dist")
    server = IndexServer(tmp / "site").start()
    key = new_key()
    try:
        publish(server.root / "hello", [wheel], f"{server.url}/hello/", key)
        yield f"{server.url}/hello/index.json", key.trusted
    finally:
        server.stop()


@pytest.fixture(scope="module")
def market_panel(
    tmp_path_factory: pytest.TempPathFactory, index: tuple[str, str]
) -> Iterator[tuple[Panel, Path, Path]]:
    work = tmp_path_factory.mktemp("market-panel")
    # The environment plugins are installed into, with what the example needs besides
    # the SDK (the marketplace installs plugin wheels only, never their dependencies).
    python = make_venv(work / "venv", editable=(SDK_DIR, ROOT / "core"))
    lock = work / "plugins.lock"
    url, trusted = index
    with serving(
        work,
        GAKWAYA_PLUGIN_INDEX_URL=url,
        GAKWAYA_PLUGIN_TRUSTED_KEYS=trusted,
        GAKWAYA_PLUGINS_LOCK=str(lock),
        GAKWAYA_PLUGIN_PYTHON=str(python),
    ) as p:
        yield p, python, lock


def test_install_a_plugin_from_the_marketplace_page(
    market_panel: tuple[Panel, Path, Path], page: Page, screenshot_dir: Path
) -> None:
    panel, python, lock = market_panel
    admin = panel.create_admin()
    sign_in(page, panel, admin)
    page.get_by_role("link", name="Plugins").click()
    page.wait_for_url(panel.url("/plugins"))
    expect(page.get_by_role("heading", name="Installed")).to_be_visible()
    page.get_by_label("Search the index").fill("hello")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/plugins\?q=hello"))
    listing = page.get_by_test_id("market-plugins")
    expect(listing).to_contain_text("gakwaya-hello")

    page.get_by_role("link", name="gakwaya-hello").click()
    page.wait_for_url(panel.url("/marketplace/gakwaya-hello"))
    expect(page.get_by_test_id("installed-version")).to_have_text("no")
    screenshots(page, "marketplace-plugin", screenshot_dir, variants=("desktop-light",))
    # The install asks first (the browser's dialog); accepting it installs.
    questions: list[str] = []

    def accept(dialog: object) -> None:
        questions.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    page.on("dialog", accept)
    page.get_by_role("button", name="Install 0.1.0").click()
    page.wait_for_url(panel.url("/plugins"), timeout=120_000)
    assert questions and "Install gakwaya-hello 0.1.0" in questions[0]
    expect(page.get_by_test_id("flash")).to_contain_text("restart")
    assert imported_version(python, "gakwaya_hello.plugin") == "0.1.0"
    locked = tomllib.loads(lock.read_text())["plugins"]
    assert [(p["name"], p["version"]) for p in locked] == [("gakwaya-hello", "0.1.0")]
    page.goto(panel.url("/marketplace/gakwaya-hello"))
    expect(page.get_by_test_id("installed-version")).to_have_text("0.1.0")
    expect(page.get_by_role("button", name="Remove")).to_be_visible()
