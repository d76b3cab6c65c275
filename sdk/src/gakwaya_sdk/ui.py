"""What a plugin adds to the web dashboard: pages, navigation entries, actions, cards.

A plugin returns these from the ``register_ui_pages``, ``register_nav_entries``,
``register_ui_actions`` and ``register_app_cards`` hooks. The dashboard (itself the
plugin ``gakwaya-webui``) reads everyone's through :meth:`Panel.contributions
<gakwaya_sdk.context.Panel.contributions>` and renders them in its own layout, so a
plugin needs no template of the dashboard and no JavaScript: it describes *what* to
show; the dashboard decides how, with its CSRF tokens, its Content-Security-Policy and
its permission checks.

Where a plugin shows data, it gets it the way the dashboard does: from the REST API
(its own routes included) through :attr:`UiContext.api`, on behalf of the signed-in
user. The API then checks permissions, organization scoping and audit exactly as for
any other client; hiding an entry or an action from a role is a courtesy, never the
check.

Placeholders: an ``href`` (and a page's ``path``) may contain ``{org}`` (the current
organization's slug) and, for actions and cards on an app, ``{app_id}``. The dashboard
fills them in; nothing else is substituted.

Validation happens when an item is built, so a bad one raises inside your hook and is
reported with your plugin's name (the plugin is marked degraded, its other items
still show). The kernel also checks what a rule in this module cannot: that a page
lives under your plugin's own prefix (:func:`url_prefix`) and that every
``permission`` is in the catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from packaging.utils import canonicalize_name

#: What :meth:`Panel.contributions` accepts: one kind per hook.
UiKind = Literal["pages", "nav", "actions", "cards"]
UI_KINDS: tuple[UiKind, ...] = ("pages", "nav", "actions", "cards")

#: The hook that supplies each kind.
UI_HOOKS: Mapping[UiKind, str] = {
    "pages": "register_ui_pages",
    "nav": "register_nav_entries",
    "actions": "register_ui_actions",
    "cards": "register_app_cards",
}

#: Placeholders an href or a page path may hold.
PLACEHOLDERS = ("{org}", "{app_id}")

_SEGMENT = re.compile(r"^(?:[A-Za-z0-9._~-]+|\{org\}|\{app_id\})$")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9._~/{}?=&%-]*$")
_LABEL = re.compile(r"^[^\x00-\x1f\x7f]{1,60}$")


class UiError(ValueError):
    """An item breaks a rule; the message names the field and the rule."""

    def __init__(self, what: str, field_name: str, rule: str) -> None:
        super().__init__(f"{what}.{field_name}: {rule}")
        self.field = field_name
        self.rule = rule


def url_prefix(plugin: str) -> str:
    """Where ``plugin``'s pages live: ``/p/`` and its name, normalised, without
    ``gakwaya-`` (``gakwaya-hello`` → ``/p/hello``). No plugin may serve under
    another's prefix."""
    return "/p/" + canonicalize_name(plugin).removeprefix("gakwaya-")


def _check_label(what: str, name: str, value: str) -> None:
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise UiError(what, name, "must be 1 to 60 characters, no control characters")


def _check_href(what: str, name: str, value: str, *, allowed: tuple[str, ...]) -> None:
    """A path on this panel: never a scheme, a host (``//``), ``..`` or a backslash,
    so an entry can only lead to the panel's own pages."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value.startswith("//")
        or len(value) > 300
        or not _PATH_CHARS.fullmatch(value)
        or "/../" in value + "/"
        or "/./" in value + "/"
    ):
        raise UiError(
            what,
            name,
            "must be a path on this panel: '/' then letters, digits and ._~/-?=&%, "
            "no '//' at the start and no '.' or '..' segment",
        )
    for token in re.findall(r"\{[^}]*\}", value):
        if token not in allowed:
            raise UiError(
                what, name, f"placeholder {token} is not one of {', '.join(allowed) or 'none'}"
            )


def _check_permission(what: str, value: str | None) -> None:
    if value is not None and not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", value):
        raise UiError(what, "permission", "must be a dotted permission name such as 'apps.read'")


@runtime_checkable
class UiApi(Protocol):
    """The panel's REST API on behalf of the signed-in user (the dashboard's client).

    ``path`` is relative to ``/api/v1`` (``"/orgs/acme/hello"``); a call returns the
    decoded JSON (or ``None`` for an empty body) and raises for a 4xx or 5xx status,
    with the API's message: let it propagate and the dashboard shows it."""

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any: ...

    async def post(self, path: str, json: Any = None) -> Any: ...

    async def put(self, path: str, json: Any = None) -> Any: ...

    async def patch(self, path: str, json: Any = None) -> Any: ...

    async def delete(self, path: str) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class UiContext:
    """What a page's, an action's or a card's function receives."""

    #: The Litestar request of the page being rendered.
    request: Any
    #: The REST API, as the signed-in user.
    api: UiApi
    #: The ``{placeholder}`` values of the page's path, ``org`` and ``app_id`` among
    #: them when the path has them (already checked: the user is a member of ``org``).
    params: Mapping[str, str] = field(default_factory=dict)
    #: The current organization's slug, when the page is under one.
    org: str | None = None
    #: The app a card is shown for.
    app_id: int | None = None
    #: The signed-in user as ``GET /api/v1/account`` shows them.
    me: Mapping[str, Any] | None = None
    #: The submitted fields of a POST (``csrf_token`` removed).
    form: Mapping[str, str] = field(default_factory=dict)


#: What a content function returns: a mapping (the context of the item's template),
#: or text. Text is escaped, unless it is HTML-safe (has ``__html__``, as
#: ``markupsafe.Markup``): then it is inserted as is, so escape what you put in it.
Content = Mapping[str, Any] | str
ContentFunction = Callable[[UiContext], Content | Awaitable[Content]]
#: What a page's ``submit`` returns: the path to go to next (a 303), or ``None`` for
#: the page itself; raising shows the error on the page.
SubmitFunction = Callable[[UiContext], str | Awaitable[str | None] | None]


def _check_template(what: str, template: str | None, templates: str | Path | None) -> None:
    if template is None:
        return
    if templates is None:
        raise UiError(what, "templates", "is required with 'template': the folder it is in")
    parts = template.split("/")
    if not template or template.startswith("/") or ".." in parts or "\\" in template:
        raise UiError(what, "template", "must be a relative name inside 'templates'")


@dataclass(frozen=True, kw_only=True)
class UiPage:
    """A page of the dashboard, rendered inside its layout (header, navigation).

    ``path`` starts with your plugin's :func:`url_prefix` (``/p/hello``,
    ``/p/hello/orgs/{org}``); a ``{org}`` segment makes it an organization's page: the
    dashboard first checks the user is a member (404 otherwise) and holds
    ``permission``. ``content`` returns the page's body: a mapping rendered with
    ``template`` (a name inside the folder ``templates``; Jinja2, autoescaped; a
    fragment, not a whole document), or text. ``submit``, when given, handles a POST
    of a form on the page (the dashboard checks its CSRF token through the API calls
    it makes). ``superuser`` pages are for installation administrators only.
    """

    path: str
    title: str
    content: ContentFunction
    template: str | None = None
    templates: str | Path | None = None
    submit: SubmitFunction | None = None
    permission: str | None = None
    superuser: bool = False

    def __post_init__(self) -> None:
        what = "UiPage"
        _check_href(what, "path", self.path, allowed=("{org}", "{app_id}"))
        if not self.path.startswith("/p/") or "?" in self.path or self.path.endswith("/"):
            raise UiError(what, "path", "must start with /p/<plugin> and hold no '?' or final '/'")
        if not all(_SEGMENT.fullmatch(s) for s in self.path.split("/")[1:]):
            raise UiError(what, "path", "segments are names, {org} or {app_id}")
        _check_label(what, "title", self.title)
        if not callable(self.content):
            raise UiError(what, "content", "must be a function taking a UiContext")
        if self.submit is not None and not callable(self.submit):
            raise UiError(what, "submit", "must be a function taking a UiContext")
        _check_template(what, self.template, self.templates)
        _check_permission(what, self.permission)
        if self.permission is not None and "{org}" not in self.path:
            raise UiError(what, "permission", "needs an {org} segment in the path")


NavSection = Literal["org", "installation"]


@dataclass(frozen=True, kw_only=True)
class NavEntry:
    """A link in the dashboard's navigation.

    ``section="org"`` entries show under the current organization (``href`` may hold
    ``{org}``) to members whose role holds ``permission`` (any member when ``None``);
    ``section="installation"`` entries show to every signed-in user, or to
    superusers only with ``superuser=True``. Lower ``order`` comes first.
    """

    label: str
    href: str
    section: NavSection = "org"
    permission: str | None = None
    superuser: bool = False
    order: int = 100

    def __post_init__(self) -> None:
        what = "NavEntry"
        _check_label(what, "label", self.label)
        if self.section not in ("org", "installation"):
            raise UiError(what, "section", "must be 'org' or 'installation'")
        allowed = ("{org}",) if self.section == "org" else ()
        _check_href(what, "href", self.href, allowed=allowed)
        _check_permission(what, self.permission)
        if self.permission is not None and self.section != "org":
            raise UiError(what, "permission", "applies to section 'org' only")


ActionTarget = Literal["app", "org"]


@dataclass(frozen=True, kw_only=True)
class UiAction:
    """A button on an app's or an organization's page.

    ``GET`` actions are links; ``POST`` actions are forms (with the dashboard's CSRF
    token) sent to ``href``, usually a page of yours with a ``submit``. ``confirm``
    asks before a destructive action (a confirmation page without JavaScript, a
    dialog with it). Shown to members whose role holds ``permission``.
    """

    label: str
    href: str
    target: ActionTarget = "app"
    method: Literal["GET", "POST"] = "GET"
    permission: str | None = None
    confirm: str | None = None

    def __post_init__(self) -> None:
        what = "UiAction"
        _check_label(what, "label", self.label)
        if self.target not in ("app", "org"):
            raise UiError(what, "target", "must be 'app' or 'org'")
        if self.method not in ("GET", "POST"):
            raise UiError(what, "method", "must be 'GET' or 'POST'")
        allowed = ("{org}", "{app_id}") if self.target == "app" else ("{org}",)
        _check_href(what, "href", self.href, allowed=allowed)
        _check_permission(what, self.permission)
        if self.confirm is not None and not (
            isinstance(self.confirm, str) and 0 < len(self.confirm) <= 300
        ):
            raise UiError(what, "confirm", "must be 1 to 300 characters")


@dataclass(frozen=True, kw_only=True)
class AppCard:
    """A card on an app's overview: a title and a body from ``content``
    (:class:`UiContext` with ``org`` and ``app_id``), rendered with ``template`` when
    it returns a mapping. A card whose function raises shows an error line instead of
    breaking the page, and is reported with your plugin's name."""

    title: str
    content: ContentFunction
    template: str | None = None
    templates: str | Path | None = None
    permission: str | None = None
    order: int = 100

    def __post_init__(self) -> None:
        what = "AppCard"
        _check_label(what, "title", self.title)
        if not callable(self.content):
            raise UiError(what, "content", "must be a function taking a UiContext")
        _check_template(what, self.template, self.templates)
        _check_permission(what, self.permission)


UiItem = UiPage | NavEntry | UiAction | AppCard

#: The class each kind's hook returns.
UI_TYPES: Mapping[UiKind, type[Any]] = {
    "pages": UiPage,
    "nav": NavEntry,
    "actions": UiAction,
    "cards": AppCard,
}


@dataclass(frozen=True)
class Contribution:
    """One item and the plugin that contributed it (shown beside errors)."""

    plugin: str
    item: UiItem


def fill(href: str, *, org: str | None = None, app_id: int | None = None) -> str:
    """``href`` with its placeholders replaced (each value must already be a slug or
    an id: the dashboard passes the ones the API gave it)."""
    if org is not None:
        href = href.replace("{org}", org)
    if app_id is not None:
        href = href.replace("{app_id}", str(int(app_id)))
    return href
