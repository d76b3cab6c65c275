"""register_ui_pages, register_nav_entries, register_ui_actions, register_app_cards:
what plugins add to the dashboard, read through ``Panel.contributions``.

Real kernels; the plugins are small objects with a manifest, as a third party's
module would be. The dashboard's use of them is tested in webui/tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.testing import TestClient

from gakwaya.app import create_app
from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel, panel_of
from gakwaya_sdk.permissions import Permission, Role, Scope
from gakwaya_sdk.ui import (
    AppCard,
    Contribution,
    NavEntry,
    UiAction,
    UiContext,
    UiError,
    UiPage,
    fill,
    url_prefix,
)


def _text(ctx: UiContext) -> str:
    return "hi"


def manifest(name: str) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "core_api": ">=0.1,<0.2"}


class Contributor:
    """One of each kind, all valid."""

    MANIFEST = manifest("gakwaya-ui-a")

    @hookimpl
    def register_permissions(self) -> Sequence[Permission]:
        return [
            Permission(
                name="ui_a.view", description="See it", min_role=Role.DEVELOPER, scope=Scope.READ
            )
        ]

    @hookimpl
    def register_ui_pages(self) -> Sequence[UiPage]:
        return [
            UiPage(path="/p/ui-a", title="Overview", content=_text),
            UiPage(path="/p/ui-a/orgs/{org}", title="Org", content=_text, permission="ui_a.view"),
        ]

    @hookimpl
    def register_nav_entries(self) -> Sequence[NavEntry]:
        return [
            NavEntry(label="UI A", href="/p/ui-a/orgs/{org}", permission="ui_a.view"),
            NavEntry(label="All", href="/p/ui-a", section="installation", superuser=True),
        ]

    @hookimpl
    def register_ui_actions(self) -> Sequence[UiAction]:
        return [
            UiAction(
                label="Restart",
                href="/p/ui-a/orgs/{org}/apps/{app_id}",
                method="POST",
                confirm="Restart it?",
            )
        ]

    @hookimpl
    def register_app_cards(self) -> Sequence[AppCard]:
        return [AppCard(title="Usage", content=_text)]


class Broken:
    """Every way a plugin can get it wrong: each is contained and named."""

    MANIFEST = manifest("gakwaya-ui-bad")

    @hookimpl
    def register_ui_pages(self) -> Sequence[Any]:
        return [
            # Another plugin's prefix: it must not serve (or shadow) their pages.
            UiPage(path="/p/ui-a/stolen", title="Stolen", content=_text),
            UiPage(path="/p/ui-bad", title="Mine", content=_text),
            UiPage(path="/p/ui-bad", title="Twice", content=_text),
            "not a page",
        ]

    @hookimpl
    def register_nav_entries(self) -> Sequence[NavEntry]:
        return [NavEntry(label="Typo", href="/p/ui-bad", permission="ui_bad.typo")]

    @hookimpl
    def register_ui_actions(self) -> Any:
        return 42

    @hookimpl
    def register_app_cards(self) -> Sequence[AppCard]:
        # Building an invalid item raises inside the hook.
        return [AppCard(title="", content=_text)]


def _items(panel: Panel, kind: Any) -> list[tuple[str, Any]]:
    return [(c.plugin, c.item) for c in panel.contributions(kind)]


def test_contributions_of_each_kind(settings: Settings) -> None:
    kernel = Kernel.create(settings, extra_plugins=[("gakwaya-ui-a", Contributor())])
    try:
        panel = kernel.plugins.panel
        assert panel is not None
        pages = _items(panel, "pages")
        assert [(p, i.path) for p, i in pages] == [
            ("gakwaya-ui-a", "/p/ui-a"),
            ("gakwaya-ui-a", "/p/ui-a/orgs/{org}"),
        ]
        nav = _items(panel, "nav")
        assert [(i.label, i.section) for _, i in nav] == [("UI A", "org"), ("All", "installation")]
        actions = _items(panel, "actions")
        assert actions[0][1].confirm == "Restart it?"
        cards = _items(panel, "cards")
        assert [i.title for _, i in cards] == ["Usage"]
        assert all(isinstance(c, Contribution) for c in panel.contributions("cards"))
        assert kernel.plugins.statuses["gakwaya-ui-a"].status == "active"
        assert {
            "register_ui_pages",
            "register_nav_entries",
            "register_ui_actions",
            "register_app_cards",
        } <= set(kernel.plugins.statuses["gakwaya-ui-a"].hooks)
        permission = panel.permission("ui_a.view")
        assert permission is not None and permission.min_role is Role.DEVELOPER
        assert panel.permission("ui_a.nope") is None
        with pytest.raises(ValueError, match="not one of"):
            panel.contributions("widgets")  # type: ignore[arg-type]
    finally:
        kernel.close()


def test_a_broken_plugin_is_contained_and_named(settings: Settings) -> None:
    kernel = Kernel.create(
        settings,
        extra_plugins=[("gakwaya-ui-bad", Broken()), ("gakwaya-ui-a", Contributor())],
    )
    try:
        panel = kernel.plugins.panel
        assert panel is not None
        pages = _items(panel, "pages")
        assert [(p, i.title) for p, i in pages] == [
            ("gakwaya-ui-bad", "Mine"),
            ("gakwaya-ui-a", "Overview"),
            ("gakwaya-ui-a", "Org"),
        ]
        assert [p for p, _ in _items(panel, "nav")] == ["gakwaya-ui-a", "gakwaya-ui-a"]
        assert [p for p, _ in _items(panel, "actions")] == ["gakwaya-ui-a"]
        assert [p for p, _ in _items(panel, "cards")] == ["gakwaya-ui-a"]
        status = kernel.plugins.statuses["gakwaya-ui-bad"]
        assert status.status == "degraded"
        for why in (
            "register_ui_pages: page '/p/ui-a/stolen' is outside this plugin's prefix '/p/ui-bad'",
            "register_ui_pages: page '/p/ui-bad' is declared twice",
            "register_ui_pages: 'not a page' is not a gakwaya_sdk.ui.UiPage",
            "register_nav_entries: permission 'ui_bad.typo' is not in the catalogue",
            "register_ui_actions returned 42, not a list",
            "hook register_app_cards raised UiError('AppCard.title: must be 1 to 60",
        ):
            assert why in status.reason, (why, status.reason)
        assert kernel.plugins.statuses["gakwaya-ui-a"].status == "active"
        # Collected once: asking again neither calls the hooks nor repeats the reasons.
        before = status.reason
        _items(panel, "pages")
        assert status.reason == before
    finally:
        kernel.close()


@get("/api/v1/ui-probe", operation_id="ui_probe_show", opt={"public": True}, sync_to_thread=False)
def ui_probe(request: Request[Any, Any, Any], panel: NamedDependency[Panel]) -> dict[str, Any]:
    # Outside dependency injection (a layout helper) the same panel is reached from
    # the request.
    same = panel_of(request) is panel
    return {"same": same, "pages": [c.item.path for c in panel.contributions("pages")]}  # type: ignore[union-attr]


def test_panel_of_a_request_is_the_injected_panel(settings: Settings) -> None:
    class Probe(Contributor):
        @hookimpl
        def register_routes(self) -> Sequence[Any]:
            return [ui_probe]

    kernel = Kernel.create(settings, extra_plugins=[("gakwaya-ui-a", Probe())])
    try:
        with TestClient(create_app(kernel, background=False)) as client:
            r = client.get("/api/v1/ui-probe")
            assert r.status_code == 200, r.text
            assert r.json() == {"same": True, "pages": ["/p/ui-a", "/p/ui-a/orgs/{org}"]}
    finally:
        kernel.close()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: NavEntry(label="x", href="https://evil.example/"),
            "NavEntry.href: must be a path",
        ),
        (lambda: NavEntry(label="x", href="//evil.example/"), "NavEntry.href"),
        (lambda: NavEntry(label="x", href="/p/a/../../api"), "NavEntry.href"),
        (lambda: NavEntry(label="x", href="/p/a\\b"), "NavEntry.href"),
        (lambda: NavEntry(label="x", href="/p/a;rm -rf"), "NavEntry.href"),
        (lambda: NavEntry(label="x", href="/p/a\n"), "NavEntry.href"),
        (lambda: NavEntry(label="x", href="/p/{user}"), "placeholder {user}"),
        (
            lambda: NavEntry(label="x", href="/p/{org}", section="installation"),
            "placeholder {org} is not one of none",
        ),
        (lambda: NavEntry(label="a\nb", href="/p/a"), "NavEntry.label"),
        (lambda: NavEntry(label="x", href="/p/a", section="top"), "NavEntry.section"),  # type: ignore[arg-type]
        (lambda: NavEntry(label="x", href="/p/a", permission="Admin"), "NavEntry.permission"),
        (lambda: UiPage(path="/hello", title="x", content=_text), "UiPage.path"),
        (lambda: UiPage(path="/p/a/", title="x", content=_text), "UiPage.path"),
        (lambda: UiPage(path="/p/a/$(id)", title="x", content=_text), "UiPage.path"),
        (lambda: UiPage(path="/p/a/-x`", title="x", content=_text), "UiPage.path"),
        (lambda: UiPage(path="/p/a/x{org}", title="x", content=_text), "UiPage.path"),
        (
            lambda: UiPage(path="/p/a", title="x", content=_text, permission="a.b"),
            "UiPage.permission: needs an {org} segment",
        ),
        (lambda: UiPage(path="/p/a", title="x", content=_text, template="t.html"), "templates"),
        (
            lambda: UiPage(
                path="/p/a", title="x", content=_text, template="../t.html", templates="."
            ),
            "UiPage.template",
        ),
        (lambda: UiPage(path="/p/a", title="x", content="text"), "UiPage.content"),  # type: ignore[arg-type]
        (lambda: UiAction(label="x", href="/p/a", method="DELETE"), "UiAction.method"),  # type: ignore[arg-type]
        (lambda: UiAction(label="x", href="/p/{app_id}", target="org"), "placeholder {app_id}"),
        (lambda: UiAction(label="x", href="/p/a", confirm=""), "UiAction.confirm"),
        (lambda: AppCard(title="x" * 61, content=_text), "AppCard.title"),
    ],
)
def test_items_refuse_what_breaks_a_rule(build: Any, message: str) -> None:
    with pytest.raises(UiError) as caught:
        build()
    assert message in str(caught.value)


def test_prefix_and_placeholders() -> None:
    assert url_prefix("gakwaya-hello") == "/p/hello"
    assert url_prefix("Gakwaya_Status.Ping") == "/p/status-ping"
    assert url_prefix("acme-tools") == "/p/acme-tools"
    assert fill("/p/x/orgs/{org}/apps/{app_id}", org="acme", app_id=7) == "/p/x/orgs/acme/apps/7"
    # Only the two placeholders are filled: a value cannot inject another.
    assert fill("/p/x/{org}", org="{app_id}") == "/p/x/{app_id}"
