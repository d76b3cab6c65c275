"""The plugin host: pluggy with entry points, behind one typed façade.

Core calls hooks only through :class:`PluginHost` (as tox does), so a hook that
raises is contained and reported with the plugin's and the hook's name. The
kernel's own domains are registered as built-in plugins the same way a
third-party plugin is, with an essential manifest.

Loading never crashes the panel. Each candidate (built-in module, entry point of
group ``gakwaya.plugins``, ``plugin_modules`` entry, or object passed by the
caller) goes through, in order: import, manifest (the ``gakwaya-plugin.toml``
shipped in the plugin's package, see :mod:`gakwaya_sdk.manifest`; objects given
by the caller or ``plugin_modules`` may carry a ``MANIFEST`` attribute instead),
unknown hooks, ``core_api``,
blocklist, operator disable, then requirements and cycles. A failure gives the
plugin a :class:`PluginStatus` with status ``refused`` (or ``disabled``) and a
reason, and the others load in the order their ``requires`` impose.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec
import pluggy
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

import gakwaya
from gakwaya.settings import SettingsError
from gakwaya_sdk import PROJECT_NAME, hookspecs
from gakwaya_sdk.context import Panel
from gakwaya_sdk.events import Event
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.manifest import (
    CORE_API_VERSION,
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    is_capability,
    manifest_from_dict,
    read_packaged_manifest,
)
from gakwaya_sdk.permissions import Permission
from gakwaya_sdk.providers import check_provider
from gakwaya_sdk.services import Service

log = logging.getLogger("gakwaya.plugins")
trace_log = logging.getLogger("gakwaya.plugins.trace")

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
    "gakwaya.plugins.plugin",
    "gakwaya.deploy.plugin",
    "gakwaya.domains.plugin",
)

# Statuses.
ACTIVE = "active"
DISABLED = "disabled"
DEGRADED = "degraded"
REFUSED = "refused"


class PluginStatus(msgspec.Struct, kw_only=True):
    name: str
    version: str = ""
    status: str  # active, disabled, refused, degraded
    reason: str = ""
    provides: list[str] = []
    requires: list[str] = []
    #: Hooks this plugin implements (empty unless it was registered).
    hooks: list[str] = []
    essential: bool = False
    builtin: bool = False
    #: Where it came from: builtin, entry_point, module (plugin_modules) or extra.
    source: str = ""


class BlockedVersion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A blocklist entry: versions of ``name`` below ``lowest_good_version`` are refused."""

    name: str
    lowest_good_version: str
    reason: str = ""


class HookFailed(Exception):
    """A plugin's hook raised; the message names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, exc: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in hook {hook!r}: {exc!r}")
        self.plugin = plugin
        self.hook = hook
        self.original = exc


class BlocklistError(SettingsError):
    """The blocklist file cannot be read; the message names the file and the rule."""


def load_blocklist(path: str | Path) -> list[BlockedVersion]:
    """Read a JSON list of ``{name, lowest_good_version, reason}``."""
    file = Path(path)
    try:
        entries = msgspec.json.decode(file.read_bytes(), type=list[BlockedVersion])
    except OSError as exc:
        raise BlocklistError(f"plugin_blocklist: cannot read {file}: {exc.strerror}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BlocklistError(f"plugin_blocklist: {file}: {exc}") from None
    for entry in entries:
        try:
            Version(entry.lowest_good_version)
        except InvalidVersion:
            raise BlocklistError(
                f"plugin_blocklist: {file}: {entry.lowest_good_version!r} "
                f"({entry.name}) is not a PEP 440 version"
            ) from None
    return entries


def builtin_manifest(name: str) -> Manifest:
    return Manifest(
        name=name,
        version=gakwaya.__version__,
        core_api=f"=={CORE_API_VERSION}",
        provides=[f"core:{name.removeprefix('core.')}"],
        essential=True,
    )


class _Candidate:
    __slots__ = ("error", "manifest", "name", "obj", "package", "source", "status")

    def __init__(
        self, name: str, obj: object | None, source: str, error: str = "", package: str = ""
    ) -> None:
        self.name = name
        self.obj = obj
        self.source = source
        self.error = error
        #: Top-level package whose ``gakwaya-plugin.toml`` is the manifest.
        self.package = package
        self.manifest: Manifest | None = None


def _top_package(module_path: str) -> str:
    return module_path.split(":", 1)[0].split(".", 1)[0]


class PluginHost:
    def __init__(
        self,
        *,
        disabled: Sequence[str] = (),
        modules: Sequence[str] = (),
        state: Mapping[str, bool] | None = None,
        blocklist: Sequence[BlockedVersion] = (),
        trace: bool = False,
        core_api: str = CORE_API_VERSION,
    ) -> None:
        self.modules = list(modules)
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.disabled = set(disabled)
        #: Persisted per-installation choices (plugin_state); no entry means enabled.
        self.state = dict(state or {})
        self.blocklist = list(blocklist)
        self.trace = trace
        self.core_api = core_api
        self.statuses: dict[str, PluginStatus] = {}
        self.manifests: dict[str, Manifest] = {}
        #: Names in the order they were registered (``requires`` first).
        self.order: list[str] = []
        #: capability → (plugin, provider), from ``register_providers``.
        self.capabilities: dict[str, tuple[str, Any]] = {}
        #: Passed to hook implementations that declare a ``panel`` parameter; the
        #: kernel sets it once its services exist.
        self.panel: Panel | None = None

    # Loading -------------------------------------------------------------------------

    def load(self, *, extra: Sequence[tuple[str, object]] = ()) -> None:
        candidates = self._candidates(extra)
        accepted: list[_Candidate] = []
        for cand in candidates:
            reason_status = self._check(cand, accepted)
            if reason_status is None:
                accepted.append(cand)
        for cand in self._resolve(accepted):
            self._register(cand)
        self._collect_providers()

    def _candidates(self, extra: Sequence[tuple[str, object]]) -> list[_Candidate]:
        out: list[_Candidate] = []
        for module_name in BUILTIN_MODULES:
            # A built-in that fails to import is a bug in the kernel: let it raise.
            module = importlib.import_module(module_name)
            name = "core." + module_name.removesuffix(".plugin").removeprefix("gakwaya.")
            cand = _Candidate(name, module, "builtin")
            cand.manifest = builtin_manifest(name)
            out.append(cand)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            package = _top_package(ep.value)
            try:
                out.append(_Candidate(ep.name, ep.load(), "entry_point", package=package))
            except Exception as exc:
                log.warning("plugin %s refused: %r", ep.name, exc)
                out.append(
                    _Candidate(ep.name, None, "entry_point", f"import failed: {exc!r}", package)
                )
        for module_name in self.modules:
            package = _top_package(module_name)
            try:
                module = importlib.import_module(module_name)
                out.append(_Candidate(module_name, module, "module", package=package))
            except Exception as exc:
                log.warning("plugin module %s refused: %r", module_name, exc)
                out.append(
                    _Candidate(module_name, None, "module", f"import failed: {exc!r}", package)
                )
        for name, plugin in extra:
            out.append(_Candidate(name, plugin, "extra"))
        return out

    def _set(self, cand: _Candidate, status: str, reason: str = "") -> None:
        m = cand.manifest
        self.statuses[cand.name] = PluginStatus(
            name=cand.name,
            version=m.version if m else "",
            status=status,
            reason=reason,
            provides=list(m.provides) if m else [],
            requires=list(m.requires) if m else [],
            essential=bool(m and m.essential),
            builtin=cand.source == "builtin",
            source=cand.source,
        )
        if status == REFUSED:
            log.warning("plugin %s refused: %s", cand.name, reason)

    def _check(self, cand: _Candidate, accepted: list[_Candidate]) -> str | None:
        """Everything but requirements; return the status when the plugin is set aside."""
        if cand.error:
            self._set(cand, REFUSED, cand.error)
            return REFUSED
        if cand.manifest is None:
            try:
                cand.manifest = self._manifest_of(cand)
            except (ManifestError, TypeError, ValueError) as exc:
                self._set(cand, REFUSED, f"invalid manifest: {exc}")
                return REFUSED
            if cand.manifest is None:
                self._set(
                    cand,
                    REFUSED,
                    f"no manifest: package {cand.package!r} ships no {MANIFEST_FILE} "
                    "(write it with 'python -m gakwaya_sdk manifest write')",
                )
                return REFUSED
            if cand.source == "entry_point" and cand.manifest.name != cand.name:
                self._set(
                    cand,
                    REFUSED,
                    f"entry point name {cand.name!r} differs from manifest name "
                    f"{cand.manifest.name!r}",
                )
                return REFUSED
            if cand.source in ("module", "extra"):
                cand.name = cand.manifest.name
        manifest = cand.manifest
        if cand.name in self.statuses or any(a.name == cand.name for a in accepted):
            cand.name = f"{cand.name} ({cand.source})"
            self._set(cand, REFUSED, "another plugin already has this name")
            return REFUSED
        unknown = self._unknown_hooks(cand.obj)
        if unknown:
            self._set(cand, REFUSED, f"implements unknown hook {unknown[0]!r}")
            return REFUSED
        if not manifest.compatible_with(self.core_api):
            self._set(
                cand,
                REFUSED,
                f"core_api {manifest.core_api!r} does not accept this core's API {self.core_api}",
            )
            return REFUSED
        for entry in self.blocklist:
            if canonicalize_name(entry.name) == canonicalize_name(manifest.name) and Version(
                manifest.version
            ) < Version(entry.lowest_good_version):
                self._set(
                    cand,
                    REFUSED,
                    f"version {manifest.version} is blocklisted (use "
                    f">={entry.lowest_good_version}): {entry.reason or 'no reason given'}",
                )
                return REFUSED
        off = cand.name in self.disabled or self.state.get(cand.name) is False
        if off:
            if manifest.essential:
                log.warning("plugin %s is essential and cannot be disabled", cand.name)
            else:
                why = (
                    "listed in disabled_plugins"
                    if cand.name in self.disabled
                    else "disabled by an operator"
                )
                self._set(cand, DISABLED, why)
                return DISABLED
        return None

    @staticmethod
    def _manifest_of(cand: _Candidate) -> Manifest | None:
        """The packaged file for entry points; for development sources (plugin_modules,
        objects given by the caller) a ``MANIFEST`` attribute wins, then the packaged
        file, then a permissive manifest under the module's own name."""
        if cand.source == "entry_point":
            return read_packaged_manifest(cand.package)
        raw = getattr(cand.obj, "MANIFEST", None)
        if raw is not None:
            return manifest_from_dict(raw)
        if cand.package:
            packaged = read_packaged_manifest(cand.package)
            if packaged is not None:
                return packaged
        return manifest_from_dict({"name": cand.name, "version": "0.0.0.dev0", "core_api": ">=0"})

    @staticmethod
    def _unknown_hooks(plugin: object) -> list[str]:
        known = {name for name in dir(hookspecs) if not name.startswith("_")}
        unknown = []
        for attr_name in dir(plugin):
            attr = getattr(plugin, attr_name, None)
            # As pluggy decides what is a hook implementation: a routine carrying the
            # marker's dict. (A plain hasattr would take any object that answers every
            # attribute, such as ``sqlalchemy.func``, for a hook.)
            if not inspect.isroutine(attr) or attr_name in known:
                continue
            if isinstance(getattr(attr, f"{PROJECT_NAME}_impl", None), dict):
                unknown.append(attr_name)
        return unknown

    def _resolve(self, accepted: list[_Candidate]) -> list[_Candidate]:
        """Refuse missing requirements and cycles; return the rest in load order."""
        pool = list(accepted)
        while True:
            changed = True
            while changed:
                changed = False
                for cand in list(pool):
                    missing = self._missing(cand, pool)
                    if missing:
                        pool.remove(cand)
                        self._set(cand, REFUSED, f"missing requirement {missing!r}")
                        changed = True
            order, cycle = self._toposort(pool)
            if not cycle:
                return order
            path = " -> ".join([*cycle, cycle[0]])
            for cand in list(pool):
                if cand.name in cycle:
                    pool.remove(cand)
                    self._set(cand, REFUSED, f"dependency cycle: {path}")

    @staticmethod
    def _providers(requirement: str, pool: list[_Candidate]) -> list[_Candidate]:
        if is_capability(requirement):
            return [c for c in pool if c.manifest and requirement in c.manifest.provides]
        return [c for c in pool if c.name == requirement]

    def _missing(self, cand: _Candidate, pool: list[_Candidate]) -> str:
        assert cand.manifest is not None
        for req in cand.manifest.requires:
            if not [p for p in self._providers(req, pool) if p is not cand]:
                return req
        return ""

    def _toposort(self, pool: list[_Candidate]) -> tuple[list[_Candidate], list[str]]:
        """Kahn's algorithm, stable in discovery order; else one cycle's names."""
        deps: dict[str, set[str]] = {}
        for cand in pool:
            assert cand.manifest is not None
            deps[cand.name] = {
                p.name
                for req in cand.manifest.requires
                for p in self._providers(req, pool)
                if p is not cand
            }
        order: list[_Candidate] = []
        done: set[str] = set()
        remaining = list(pool)
        while remaining:
            ready = [c for c in remaining if deps[c.name] <= done]
            if not ready:
                return order, self._find_cycle(deps, {c.name for c in remaining})
            first = ready[0]
            order.append(first)
            done.add(first.name)
            remaining.remove(first)
        return order, []

    @staticmethod
    def _find_cycle(deps: dict[str, set[str]], names: set[str]) -> list[str]:
        # Every remaining node has a remaining dependency: walking one finds a cycle.
        start = sorted(names)[0]
        path: list[str] = []
        node = start
        while node not in path:
            path.append(node)
            node = sorted(deps[node] & names)[0]
        return path[path.index(node) :]

    def _register(self, cand: _Candidate) -> None:
        assert cand.manifest is not None
        try:
            self.pm.register(cand.obj, name=cand.name)
        except Exception as exc:
            self._set(cand, REFUSED, f"registration failed: {exc}")
            return
        self._set(cand, ACTIVE)
        self.statuses[cand.name].hooks = sorted(
            h.name for h in self.pm.get_hookcallers(cand.obj) or ()
        )
        self.manifests[cand.name] = cand.manifest
        self.order.append(cand.name)

    def _collect_providers(self) -> None:
        """Check each plugin's providers against its manifest and its kind's protocol."""
        for plugin, result in self._collect_tolerant("register_providers"):
            manifest = self.manifests[plugin]
            for provider in result or ():
                why = check_provider(provider, manifest.provides)
                if not why:
                    capability = provider.capability
                    holder = self.capabilities.get(capability)
                    if holder is None:
                        self.capabilities[capability] = (plugin, provider)
                        continue
                    why = f"capability {capability!r} is already provided by {holder[0]!r}"
                self._mark_degraded(plugin, f"provider refused: {why}")

    def _collect_tolerant(self, hook_name: str) -> list[tuple[str, Any]]:
        """Like :meth:`_collect`, but a failing plugin is degraded and skipped."""
        hook = getattr(self.pm.hook, hook_name)
        out: list[tuple[str, Any]] = []
        for impl in _call_order(hook):
            try:
                out.append((impl.plugin_name, self._call(impl, hook_name, {})))
            except Exception as exc:
                self._degrade(impl.plugin_name, hook_name, exc)
        return out

    def _mark_degraded(self, plugin: str, reason: str) -> None:
        log.error("plugin %s degraded: %s", plugin, reason)
        status = self.statuses.get(plugin)
        if status is not None and status.status in (ACTIVE, DEGRADED):
            status.status = DEGRADED
            status.reason = f"{status.reason}; {reason}" if status.reason else reason

    def provider(self, capability: str) -> Any | None:
        held = self.capabilities.get(capability)
        return held[1] if held else None

    def providers(self, kind: str) -> dict[str, Any]:
        prefix = f"{kind}:"
        return {c: p for c, (_, p) in self.capabilities.items() if c.startswith(prefix)}

    def services(self) -> list[tuple[str, Service]]:
        """(plugin, service) from every active plugin's ``register_services``, in load
        order. A plugin whose hook raises, or returns something that is not a list of
        :class:`~gakwaya_sdk.services.Service`, is degraded and its bad items left out:
        the others' services still run."""
        out: list[tuple[str, Service]] = []
        for plugin, result in self._collect_tolerant("register_services"):
            try:
                items = list(result or ())
            except TypeError:
                self._mark_degraded(plugin, f"register_services returned {result!r}, not a list")
                continue
            for item in items:
                if isinstance(item, Service) and isinstance(item.name, str):
                    out.append((plugin, item))
                else:
                    self._mark_degraded(
                        plugin,
                        f"service refused: {item!r} is not a Service "
                        "(a 'name' string, start() and stop())",
                    )
        return out

    def start_services(self, services: Sequence[tuple[str, Service]]) -> list[tuple[str, Service]]:
        """Start each service; one that raises is logged and degrades its plugin, the
        others still start. Returns those that started (what to stop later)."""
        started: list[tuple[str, Service]] = []
        for plugin, service in services:
            try:
                service.start()
            except Exception as exc:
                log.error(
                    "plugin %s: service %s failed to start", plugin, service.name, exc_info=exc
                )
                self._mark_degraded(plugin, f"service {service.name!r} failed to start: {exc!r}")
                continue
            log.info("plugin %s: service %s started", plugin, service.name)
            started.append((plugin, service))
        return started

    def stop_services(self, services: Sequence[tuple[str, Service]]) -> None:
        """Stop each service, the last started first; a failure is logged with the
        plugin's name and does not keep the others running."""
        for plugin, service in reversed(services):
            try:
                service.stop()
            except Exception as exc:
                log.error(
                    "plugin %s: service %s failed to stop", plugin, service.name, exc_info=exc
                )
                self._mark_degraded(plugin, f"service {service.name!r} failed to stop: {exc!r}")
                continue
            log.info("plugin %s: service %s stopped", plugin, service.name)

    def migration_dirs(self) -> list[tuple[str, str]]:
        """(plugin, directory) of every active plugin's Alembic branch, in load order.
        A plugin whose hook raises is degraded and left out: the others still migrate."""
        found = dict(self._collect_tolerant("register_migrations"))
        return [(name, str(found[name])) for name in self.order if found.get(name)]

    # Calling ---------------------------------------------------------------------------

    def _call(self, impl: Any, hook_name: str, kwargs: Mapping[str, Any]) -> Any:
        if "panel" in impl.argnames and "panel" not in kwargs:
            kwargs = {**kwargs, "panel": self.panel}
        accepted = {k: v for k, v in kwargs.items() if k in impl.argnames}
        function: Callable[..., Any] = impl.function
        if not self.trace:
            return function(**accepted)
        start = time.perf_counter()
        outcome = "ok"
        try:
            return function(**accepted)
        except BaseException:
            outcome = "raised"
            raise
        finally:
            trace_log.info(
                "hook %s plugin %s %s in %.3f ms",
                hook_name,
                impl.plugin_name,
                outcome,
                (time.perf_counter() - start) * 1000,
            )

    def _collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation, one at a time, so one failure names its plugin."""
        hook = getattr(self.pm.hook, hook_name)
        out: list[tuple[str, Any]] = []
        for impl in _call_order(hook):
            try:
                result = self._call(impl, hook_name, kwargs)
            except Exception as exc:
                self._degrade(impl.plugin_name, hook_name, exc)
                raise HookFailed(impl.plugin_name, hook_name, exc) from exc
            out.append((impl.plugin_name, result))
        return out

    def _degrade(self, plugin: str, hook: str, exc: BaseException) -> None:
        log.error("plugin %s failed in hook %s", plugin, hook, exc_info=exc)
        self._mark_degraded(plugin, f"hook {hook} raised {exc!r}")

    def _flatten(self, hook_name: str) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        for plugin, result in self._collect(hook_name):
            for item in result or ():
                items.append((plugin, item))
        return items

    def first_result(self, hook_name: str, **kwargs: Any) -> Any | None:
        """A ``firstresult`` hook (``builder_for_source``): the first non-None answer in
        call order. A raising implementation is contained (its plugin degraded) and
        the next one is asked."""
        for impl in _call_order(getattr(self.pm.hook, hook_name)):
            try:
                result = self._call(impl, hook_name, kwargs)
            except Exception as exc:
                self._degrade(impl.plugin_name, hook_name, exc)
                continue
            if result is not None:
                return result
        return None

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
        for impl in _call_order(self.pm.hook.on_event):
            try:
                self._call(impl, "on_event", {"event": event, "event_id": event_id})
            except Exception as exc:
                self._degrade(impl.plugin_name, "on_event", exc)
                failures.append(HookFailed(impl.plugin_name, "on_event", exc))
        return failures

    def status_list(self) -> list[PluginStatus]:
        return sorted(self.statuses.values(), key=lambda s: s.name)


def _call_order(hook: Any) -> list[Any]:
    """Implementations in the order the host calls them: ``tryfirst`` ones, then the
    rest, then ``trylast`` ones, each group in registration order, so a plugin's
    requirements (registered before it) are called before it. (pluggy's own loop runs
    the most recently registered first; the host calls one implementation at a time
    to name a failing plugin, so it picks the order itself.)"""
    impls = hook.get_hookimpls()
    return (
        [i for i in impls if i.tryfirst]
        + [i for i in impls if not i.tryfirst and not i.trylast]
        + [i for i in impls if i.trylast]
    )


def json_statuses(statuses: Sequence[PluginStatus]) -> str:
    return json.dumps(msgspec.to_builtins(list(statuses)), indent=2)
