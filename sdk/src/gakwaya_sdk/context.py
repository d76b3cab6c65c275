"""What the kernel hands a plugin at run time, as typed protocols.

A plugin never imports the kernel, so it cannot name the kernel's classes. It
names these protocols instead; the kernel passes objects that satisfy them:

- in a route handler, ask for the dependencies by name with Litestar's
  ``NamedDependency``: ``panel: NamedDependency[Panel]`` anywhere, and
  ``current_org: NamedDependency[OrgContext]`` under ``/api/v1/orgs/{org:str}``;
- a hook that declares a ``panel`` parameter (``on_event``) receives it;
- a job function reaches it as ``ctx.panel``.

Everything here is read from the kernel's current state on each call: settings
changed through the API are seen by the next call, without a restart.

Code that runs outside a handler's dependency injection (a template helper, a
layout) reaches the panel with :func:`panel_of`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Permission, Role
from gakwaya_sdk.ui import Contribution, UiKind


@runtime_checkable
class OrgContext(Protocol):
    """The organization named in the request path, and the caller's role in it.

    The kernel has already checked that the caller is a member (else 404) and
    holds the route's permission (else 403) before the handler runs.
    """

    @property
    def id(self) -> int:
        """The organization's id: scope every query of your own tables by it."""

    @property
    def slug(self) -> str:
        """The organization's URL name."""

    @property
    def name(self) -> str:
        """The organization's display name."""

    @property
    def role(self) -> Role:
        """The caller's role in this organization."""


@runtime_checkable
class Panel(Protocol):
    """The kernel's services a plugin may use."""

    @property
    def core_api(self) -> str:
        """The plugin API version of the running kernel (``CORE_API_VERSION``)."""

    def settings(self, plugin: str, *, org_id: int | None = None) -> Mapping[str, Any]:
        """The effective settings of ``plugin``, as its manifest declares them.

        Every declared setting is present: the value an operator set, else the
        manifest's default. With ``org_id``, settings whose ``scope`` is
        ``organization`` take that organization's value when it set one.
        Secrets come back decrypted: never log or return them.
        """

    def publish(self, event: Event) -> int:
        """Store ``event`` and deliver it to every subscriber; return its id.

        Call it after the change it describes is committed. The event's type must
        be registered (``register_event_types``)."""

    def enqueue(
        self,
        job_type: str,
        *,
        org_id: int | None = None,
        arguments: Mapping[str, Any] | None = None,
        created_by: str = "",
    ) -> str:
        """Queue a job of a registered type (``register_jobs``); return its id."""

    def transaction(self) -> AbstractContextManager[Any]:
        """A SQLAlchemy ``Session`` in a write transaction on the panel's database,
        committed when the ``with`` block ends without an exception, else rolled back.

        For your plugin's own tables (see ``register_migrations``); scope every
        query by organization yourself. In a route handler prefer the ``db``
        dependency, which shares the request's transaction."""

    def provider(self, capability: str) -> Any | None:
        """The active provider of ``capability`` (``kind:name``, e.g. ``runtime:docker``),
        or ``None`` when no active plugin provides it."""

    def providers(self, kind: str) -> Mapping[str, Any]:
        """Every active provider of ``kind`` (e.g. ``notifier``), by capability name."""

    def data_dir(self, plugin: str) -> Path:
        """A directory for ``plugin``'s own files (state, caches), created on first use,
        under the panel's data directory and shared by every process of the panel
        (serving processes and workers on the same host)."""

    def contributions(self, kind: UiKind) -> Sequence[Contribution]:
        """What every active plugin adds to the web dashboard, in load order.

        ``kind`` is ``"pages"``, ``"nav"``, ``"actions"`` or ``"cards"`` (the items
        of ``register_ui_pages``, ``register_nav_entries``, ``register_ui_actions``
        and ``register_app_cards``). Collected once per process; a plugin whose hook
        raises, or whose item breaks a rule, is marked degraded with the reason and
        its items of that kind are left out."""

    def permission(self, name: str) -> Permission | None:
        """The catalogue's entry ``name`` (its ``min_role`` and ``scope``), or ``None``.

        For showing or hiding what a role may not use; the API checks again."""


#: Where the kernel keeps its :class:`Panel` in the application's ``state``.
PANEL_STATE_KEY = "gakwaya_panel"


def panel_of(request: Any) -> Panel:
    """The :class:`Panel` of the application serving ``request`` (a Litestar
    request or connection), for code that is not a route handler and so cannot ask
    for the ``panel`` dependency."""
    panel = request.app.state.get(PANEL_STATE_KEY)
    if panel is None:
        raise LookupError("this application was not built by the Gakwaya kernel")
    return panel  # type: ignore[no-any-return]
