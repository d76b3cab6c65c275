"""Collecting what plugins add to the web dashboard (``register_ui_pages`` & co.).

The dashboard reads these through ``Panel.contributions``. Each item was checked by
its own class when the plugin built it (:mod:`gakwaya_sdk.ui`); here come the rules
that need the kernel: a page lives under its own plugin's prefix (no plugin can
serve, or shadow, another's pages), and a permission is in the catalogue (a typo
would otherwise hide an entry from everyone, silently).
"""

from __future__ import annotations

from collections.abc import Callable

from gakwaya.plugins.host import PluginHost
from gakwaya_sdk.ui import UI_HOOKS, UI_TYPES, Contribution, UiKind, UiPage, url_prefix


def collect(
    host: PluginHost, kind: UiKind, known_permission: Callable[[str], bool]
) -> list[Contribution]:
    """Every active plugin's items of ``kind``, in load order. A hook that raises, a
    result that is not a list, and an item that breaks a rule each degrade the
    plugin with the reason; the bad items are left out and the rest are kept."""
    if kind not in UI_HOOKS:
        raise ValueError(f"contributions: {kind!r} is not one of {', '.join(UI_HOOKS)}")
    hook = UI_HOOKS[kind]
    expected = UI_TYPES[kind]
    out: list[Contribution] = []
    seen_paths: set[str] = set()
    for plugin, result in host._collect_tolerant(hook):
        if result is None:
            continue
        try:
            items = list(result)
        except TypeError:
            host._mark_degraded(plugin, f"{hook} returned {result!r}, not a list")
            continue
        for item in items:
            why = _refusal(plugin, item, expected, known_permission, seen_paths)
            if why:
                host._mark_degraded(plugin, f"{hook}: {why}")
                continue
            out.append(Contribution(plugin, item))
    return out


def _refusal(
    plugin: str,
    item: object,
    expected: type[object],
    known_permission: Callable[[str], bool],
    seen_paths: set[str],
) -> str:
    if not isinstance(item, expected):
        return f"{item!r} is not a gakwaya_sdk.ui.{expected.__name__}"
    permission = getattr(item, "permission", None)
    if permission is not None and not known_permission(permission):
        return f"permission {permission!r} is not in the catalogue (register_permissions)"
    if isinstance(item, UiPage):
        prefix = url_prefix(plugin)
        if item.path != prefix and not item.path.startswith(prefix + "/"):
            return f"page {item.path!r} is outside this plugin's prefix {prefix!r}"
        if item.path in seen_paths:
            return f"page {item.path!r} is declared twice"
        seen_paths.add(item.path)
    return ""
