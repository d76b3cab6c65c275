"""Every hook the Gakwaya kernel calls.

Each hook is declared once here with a keyword-only signature. Implement one
by writing a function of the same name in your plugin module, decorated with
:data:`gakwaya_sdk.hookimpl`; you may accept fewer parameters than declared.
Results may be plain values or awaitables unless a hook says otherwise.

The families follow pytest and Datasette: ``register_<things>`` returns a list
of items the kernel collects from every plugin; ``<thing>_for_<context>`` picks
one provider (the first non-None result wins); ``on_event`` is a subscriber.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gakwaya_sdk.context import Panel
from gakwaya_sdk.events import Event
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.markers import hookspec
from gakwaya_sdk.permissions import Permission
from gakwaya_sdk.providers import SourceTree
from gakwaya_sdk.services import Service
from gakwaya_sdk.ui import AppCard, NavEntry, UiAction, UiPage


@hookspec
def register_permissions() -> Sequence[Permission]:
    """Add entries to the permission catalogue.

    Called once when the panel starts. Return the :class:`Permission` entries
    your routes require (through ``opt={"permission": name}``). A name already
    registered by another plugin stops that plugin from loading its entry and
    is reported at start-up.
    """


@hookspec
def register_event_types() -> Sequence[type[Event]]:
    """Add event types to the registry.

    Called once at start-up. Return :class:`Event` subclasses; their ``tag`` is
    the type name stored with each event and shown to subscribers and streams.
    Only registered types can be published.
    """


@hookspec
def register_routes() -> Sequence[Any]:
    """Add HTTP routes to the panel.

    Called once when the application is built. Return Litestar route handlers
    or controllers. Each handler must set a stable ``operation_id``
    (``<resource>_<verb>``) and, for routes under ``/api/v1/orgs/{org:str}``,
    ``opt={"permission": "<name>"}``: the kernel then resolves the caller,
    checks the role and the API key's scopes, and answers 404 for an
    organization the caller is not a member of.
    """


@hookspec
def register_jobs() -> Sequence[JobType]:
    """Add job types that can be enqueued.

    Called once in every process that runs or enqueues jobs (the panel and
    each ``gakwaya worker``). Return :class:`JobType` entries; the name is
    what ``enqueue`` takes, so keep it stable and prefixed with your plugin's
    name (``backups.run``).
    """


@hookspec
def register_providers(panel: Panel) -> Sequence[Any]:
    """Supply capabilities: a runtime, a builder, a proxy, a notifier…

    Called once at start-up, in every process (``panel`` gives the kernel's
    services, e.g. ``panel.data_dir`` for a provider's state; its settings and
    database are ready only once the hook has returned, so read them in the
    provider's methods). Return provider objects, each with a
    ``capability`` attribute ``kind:name`` that your manifest lists under
    ``provides`` and the methods of that kind's protocol in
    :mod:`gakwaya_sdk.providers`. A provider that fails these checks is left
    out and the plugin is marked degraded, with the reason. Two plugins
    providing the same capability: the one loaded first (its dependencies
    before it) wins, and the other is reported.
    """


@hookspec
def register_migrations() -> str | None:
    """Point the kernel at your plugin's Alembic migrations.

    Return the directory of your revision files (usually
    ``str(Path(__file__).parent / "migrations")``), or ``None``. Your first
    revision has ``down_revision = None`` and ``branch_labels =
    ("<your plugin name>",)``; the kernel's revisions are on the ``core``
    branch. ``gakwaya migrate`` upgrades ``core`` first, then each enabled
    plugin's branch in load order (a plugin's ``requires`` before it), so your
    tables may reference core tables and those of the plugins you require.
    Prefix your tables (and revision ids) with a short form of your plugin's
    name (``hello_welcomes`` for ``gakwaya-hello``) so they never meet another
    plugin's.
    """


@hookspec
def on_event(event: Event, event_id: int, panel: Panel) -> None:
    """Receive every published event, in every process.

    Called after the event is stored, once per process: in the process that
    published it and, when Redis is configured, in every other panel and
    worker process. Keep it quick; enqueue a job for slow work. An exception
    is logged with your plugin's name and does not reach the publisher.

    ``event`` is the typed event (an instance of a registered :class:`Event`
    subclass); ``event_id`` is its id in the stored event log, increasing, the
    same in every process, so a subscriber can use it to skip duplicates.
    ``panel`` gives the kernel's services (:class:`gakwaya_sdk.context.Panel`).
    The return value is ignored.
    """


@hookspec(firstresult=True)
def builder_for_source(source: SourceTree) -> str | None:
    """Pick the builder for a checked-out source tree.

    Called by the deploy pipeline after the source is fetched, in the worker
    running the deployment. Look at ``source.context_dir`` (the app's
    subdirectory of the checkout) and ``source.dockerfile`` (the Dockerfile path
    the app configured, relative to it) and return the capability of a builder
    you provide (``"builder:dockerfile"``) when you can build it, else ``None``.
    The first non-None result wins; mark your implementation ``tryfirst=True``
    to be asked before the built-in builders. Read files only; do not change
    the tree here.
    """


@hookspec
def register_services(panel: Panel) -> Sequence[Service]:
    """Run long-lived background work in the serving panel process.

    Called once when ``gakwaya serve`` starts (not in ``gakwaya worker`` nor in
    CLI commands), with ``panel`` (:class:`gakwaya_sdk.context.Panel`). Return
    :class:`~gakwaya_sdk.services.Service` objects: the kernel calls ``start()``
    after its own background services (job runner, event relay) are up and
    ``stop()`` at shutdown, each contained: one that
    raises is reported with your plugin's name and the others still run.
    ``start()`` must return promptly, starting a daemon thread for its loop.
    """


@hookspec
def register_ui_pages() -> Sequence[UiPage]:
    """Add pages to the web dashboard, shown inside its layout.

    Called once per process, the first time the dashboard needs its pages (your
    plugin's other hooks have run by then). Return :class:`gakwaya_sdk.ui.UiPage`
    items whose ``path`` starts with your plugin's ``/p/<name>`` prefix
    (:func:`gakwaya_sdk.ui.url_prefix`); the dashboard serves them, checks
    membership and ``permission`` for ``{org}`` pages, and renders what ``content``
    returns. A page outside your prefix, or naming a permission no plugin
    registered, is left out and your plugin is marked degraded with the reason.
    """


@hookspec
def register_nav_entries() -> Sequence[NavEntry]:
    """Add links to the web dashboard's navigation.

    Called once per process, the first time the dashboard draws its layout. Return
    :class:`gakwaya_sdk.ui.NavEntry` items: ``section="org"`` entries show under the
    current organization (``{org}`` in ``href`` is its slug) to members whose role
    holds ``permission``; ``section="installation"`` entries show to every signed-in
    user (superusers only with ``superuser=True``). The return value is collected
    from every plugin, sorted by ``order`` then label.
    """


@hookspec
def register_ui_actions() -> Sequence[UiAction]:
    """Add buttons to the dashboard's app and organization pages.

    Called once per process, the first time such a page is drawn. Return
    :class:`gakwaya_sdk.ui.UiAction` items: ``target="app"`` actions show on every
    app's page (``{org}`` and ``{app_id}`` filled in), ``target="org"`` ones on the
    organization's page, to members whose role holds ``permission``; ``confirm``
    makes the dashboard ask before a destructive action. The return value is
    collected from every plugin.
    """


@hookspec
def register_app_cards() -> Sequence[AppCard]:
    """Add cards to the overview page of every app in the dashboard.

    Called once per process, the first time an app's overview is drawn. Return
    :class:`gakwaya_sdk.ui.AppCard` items; each card's ``content`` is called for
    every overview drawn, with the app's ``org`` and ``app_id``, and what it
    returns fills the card. A card whose function raises shows an error line in its
    place, and the failure is reported with your plugin's name.
    """
