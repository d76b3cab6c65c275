"""The plugin host: pluggy with entry points, behind one typed façade.

Core calls hooks only through :class:`PluginHost` (as tox does), so a hook that
raises is contained and reported with the plugin's and the hook's name. The
kernel's own domains are registered as built-in plugins the same way a
third-party plugin is; the manifest checks, marketplace and enable/disable
state arrive with the plugin-host issue and slot into :meth:`load`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

import msgspec
import pluggy

from gakwaya_sdk import PROJECT_NAME, hookspecs
from gakwaya_sdk.events import Event
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.permissions import Permission

log = logging.getLogger("gakwaya.plugins")

ENTRY_POINT_GROUP = "gakwaya.plugins"

#: The kernel's own domains, loaded as plugins in this order.
BUILTIN_MODULES: tuple[str, ...] = (
    "gakwaya.health.plugin",
    "gakwaya.identity.plugin",
    "gakwaya.orgs.plugin",
    "gakwaya.apikeys.plugin",
    "gakwaya.audit.plugin",
    "gakwaya.events.plugin",
    "gakwaya.jobs.plugin",
)


class PluginStatus(msgspec.Struct, kw_only=True):
    name: str
    status: str  # active, disabled, refused, degraded
    reason: str = ""
    builtin: bool = False


class HookFailed(Exception):
    """A plugin's hook raised; the message names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, exc: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in hook {hook!r}: {exc!r}")
        self.plugin = plugin
        self.hook = hook
        self.original = exc


class PluginHost:
    def __init__(self, *, disabled: Sequence[str] = (), modules: Sequence[str] = ()) -> None:
        self.modules = list(modules)
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.disabled = set(disabled)
        self.statuses: dict[str, PluginStatus] = {}

    # Loading -------------------------------------------------------------------------

    def load(self, *, extra: Sequence[tuple[str, object]] = ()) -> None:
        for module_name in BUILTIN_MODULES:
            module = importlib.import_module(module_name)
            name = module_name.removesuffix(".plugin").removeprefix("gakwaya.")
            self.pm.register(module, name=f"core.{name}")
            self.statuses[f"core.{name}"] = PluginStatus(
                name=f"core.{name}", status="active", builtin=True
            )
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self.disabled:
                self.statuses[ep.name] = PluginStatus(
                    name=ep.name, status="disabled", reason="listed in disabled_plugins"
                )
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:
                log.warning("plugin %s refused: %r", ep.name, exc)
                self.statuses[ep.name] = PluginStatus(
                    name=ep.name, status="refused", reason=f"import failed: {exc!r}"
                )
                continue
            self.statuses[ep.name] = PluginStatus(name=ep.name, status="active")
        for module_name in self.modules:
            try:
                module = importlib.import_module(module_name)
                self.pm.register(module, name=module_name)
            except Exception as exc:
                log.warning("plugin module %s refused: %r", module_name, exc)
                self.statuses[module_name] = PluginStatus(
                    name=module_name, status="refused", reason=f"import failed: {exc!r}"
                )
                continue
            self.statuses[module_name] = PluginStatus(name=module_name, status="active")
        for name, plugin in extra:
            self.pm.register(plugin, name=name)
            self.statuses[name] = PluginStatus(name=name, status="active")
        self._refuse_unknown_hooks()

    def _refuse_unknown_hooks(self) -> None:
        known = {name for name in dir(hookspecs) if not name.startswith("_")}
        for plugin in list(self.pm.get_plugins()):
            name = self.pm.get_name(plugin) or repr(plugin)
            for hookimpl_name in dir(plugin):
                attr = getattr(plugin, hookimpl_name, None)
                if (
                    callable(attr)
                    and hasattr(attr, f"{PROJECT_NAME}_impl")
                    and hookimpl_name not in known
                ):
                    self.pm.unregister(plugin)
                    self.statuses[name] = PluginStatus(
                        name=name,
                        status="refused",
                        reason=f"implements unknown hook {hookimpl_name!r}",
                    )
                    log.warning("plugin %s refused: unknown hook %s", name, hookimpl_name)
                    break
        self.pm.check_pending()

    # Calling ---------------------------------------------------------------------------

    def _collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation, one at a time, so one failure names its plugin."""
        hook = getattr(self.pm.hook, hook_name)
        out: list[tuple[str, Any]] = []
        for impl in reversed(hook.get_hookimpls()):
            accepted = {k: v for k, v in kwargs.items() if k in impl.argnames}
            try:
                result = impl.function(**accepted)
            except Exception as exc:
                self._degrade(impl.plugin_name, hook_name, exc)
                raise HookFailed(impl.plugin_name, hook_name, exc) from exc
            out.append((impl.plugin_name, result))
        return out

    def _degrade(self, plugin: str, hook: str, exc: BaseException) -> None:
        log.error("plugin %s failed in hook %s", plugin, hook, exc_info=exc)
        status = self.statuses.get(plugin)
        if status is not None and status.status == "active":
            status.status = "degraded"
            status.reason = f"hook {hook} raised {exc!r}"

    def _flatten(self, hook_name: str) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        for plugin, result in self._collect(hook_name):
            for item in result or ():
                items.append((plugin, item))
        return items

    def permissions(self) -> list[tuple[str, Permission]]:
        return self._flatten("register_permissions")

    def event_types(self) -> list[tuple[str, type[Event]]]:
        return self._flatten("register_event_types")

    def routes(self) -> list[tuple[str, Any]]:
        return self._flatten("register_routes")

    def job_types(self) -> list[tuple[str, JobType]]:
        return self._flatten("register_jobs")

    def on_event(self, event: Event, event_id: int) -> list[HookFailed]:
        """Deliver to every subscriber; failures are contained and returned, not raised."""
        failures: list[HookFailed] = []
        for impl in reversed(self.pm.hook.on_event.get_hookimpls()):
            kwargs = {"event": event, "event_id": event_id}
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as exc:
                self._degrade(impl.plugin_name, "on_event", exc)
                failures.append(HookFailed(impl.plugin_name, "on_event", exc))
        return failures
