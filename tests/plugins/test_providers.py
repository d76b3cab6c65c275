"""register_providers: capabilities checked against the manifest and the kind's protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gakwaya.plugins.host import PluginHost
from gakwaya_sdk import hookimpl
from gakwaya_sdk.providers import KINDS, Notification, Notifier, check_provider


class GoodNotifier:
    capability = "notifier:memo"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *, notification: Notification, settings: Mapping[str, Any]) -> None:
        self.sent.append(notification.title)


class HalfNotifier:
    capability = "notifier:half"  # no send()


def providing(
    name: str, provides: list[str], *providers: object, requires: Sequence[str] = ()
) -> object:
    class Plugin:
        MANIFEST = {
            "name": name,
            "version": "1.0",
            "core_api": ">=0.1,<0.2",
            "provides": provides,
            "requires": list(requires),
        }

        @hookimpl
        def register_providers(self) -> Sequence[object]:
            return list(providers)

    return Plugin()


def _host(*extra: tuple[str, object]) -> PluginHost:
    from tests.plugins.test_loading import WORKSPACE_PLUGINS

    host = PluginHost(disabled=WORKSPACE_PLUGINS)
    host.load(extra=list(extra))
    return host


def test_a_declared_provider_is_found_by_capability_and_kind() -> None:
    memo = GoodNotifier()
    host = _host(("memo", providing("memo", ["notifier:memo"], memo)))
    assert host.statuses["memo"].status == "active"
    assert "register_providers" in host.statuses["memo"].hooks
    assert host.provider("notifier:memo") is memo
    assert host.providers("notifier") == {"notifier:memo": memo}
    assert host.providers("runtime") == {}
    assert host.provider("notifier:absent") is None
    assert isinstance(memo, Notifier)


@pytest.mark.parametrize(
    ("provides", "provider", "reason"),
    [
        ([], GoodNotifier(), "'notifier:memo' is not listed in the manifest's 'provides'"),
        (["notifier:half"], HalfNotifier(), "'notifier:half': missing send of Notifier"),
        (["teleport:x"], type("T", (), {"capability": "teleport:x"})(), "unknown kind 'teleport'"),
        ([], object(), "has no 'capability' attribute"),
    ],
)
def test_a_provider_failing_a_check_is_left_out(
    provides: list[str], provider: object, reason: str
) -> None:
    host = _host(("bad", providing("bad", provides, provider)))
    status = host.statuses["bad"]
    assert status.status == "degraded"
    assert reason in status.reason and status.reason.startswith("provider refused: ")
    assert host.capabilities == {}
    # The rest of the panel is untouched.
    assert host.statuses["core.orgs"].status == "active"


def test_the_first_loaded_provider_of_a_capability_wins() -> None:
    first, second = GoodNotifier(), GoodNotifier()
    host = _host(
        ("later", providing("later", ["notifier:memo"], second, requires=["earlier"])),
        ("earlier", providing("earlier", ["notifier:memo"], first)),
    )
    assert host.order.index("earlier") < host.order.index("later")
    assert host.provider("notifier:memo") is first
    assert host.statuses["earlier"].status == "active"
    assert host.statuses["later"].status == "degraded"
    assert "already provided by 'earlier'" in host.statuses["later"].reason


def test_register_providers_raising_degrades_only_that_plugin() -> None:
    class Raising:
        MANIFEST = {"name": "boom", "version": "1", "core_api": ">=0.1", "provides": ["notifier:x"]}

        @hookimpl
        def register_providers(self) -> Sequence[object]:
            raise RuntimeError("no providers today")

    memo = GoodNotifier()
    host = _host(("boom", Raising()), ("memo", providing("memo", ["notifier:memo"], memo)))
    assert host.statuses["boom"].status == "degraded"
    assert (
        "register_providers raised RuntimeError('no providers today')"
        in host.statuses["boom"].reason
    )
    assert host.provider("notifier:memo") is memo


def test_every_kind_has_a_protocol_with_methods() -> None:
    assert set(KINDS) == {
        "git", "builder", "runtime", "proxy", "certs", "dns", "database",
        "backup", "logs", "metrics", "notifier", "billing",
    }  # fmt: skip
    for kind, protocol in KINDS.items():
        methods = [n for n in dir(protocol) if not n.startswith("_") and n != "capability"]
        assert methods, kind
        # An object with the capability and nothing else is refused, naming the methods.
        reason = check_provider(type("X", (), {"capability": f"{kind}:x"})(), [f"{kind}:x"])
        assert all(m in reason for m in methods), (kind, reason)


def test_hooks_are_called_requirements_first() -> None:
    calls: list[str] = []

    def recording(name: str, requires: Sequence[str] = ()) -> object:
        class Plugin:
            MANIFEST = {
                "name": name,
                "version": "1",
                "core_api": ">=0.1",
                "requires": list(requires),
            }

            @hookimpl
            def register_permissions(self) -> list[object]:
                calls.append(name)
                return []

        return Plugin()

    class Last:
        MANIFEST = {"name": "last", "version": "1", "core_api": ">=0.1"}

        @hookimpl(trylast=True)
        def register_permissions(self) -> list[object]:
            calls.append("last")
            return []

    class First:
        MANIFEST = {"name": "first", "version": "1", "core_api": ">=0.1"}

        @hookimpl(tryfirst=True)
        def register_permissions(self) -> list[object]:
            calls.append("first")
            return []

    host = _host(
        ("last", Last()),
        ("c", recording("c", ["b"])),
        ("b", recording("b", ["a"])),
        ("first", First()),
        ("a", recording("a")),
    )
    calls.clear()
    host.permissions()
    assert calls == ["first", "a", "b", "c", "last"]
    # The kernel's own domains come before every other plugin.
    assert host.order[: len(host.order) - 5] == [n for n in host.order if n.startswith("core.")]


def test_objects_answering_every_attribute_are_not_hooks() -> None:
    """A plugin module that imports ``sqlalchemy.func`` (which has every attribute,
    ``gakwaya_impl`` included) is not refused for an unknown hook named ``func``."""
    from sqlalchemy import func

    class Plugin:
        MANIFEST = {"name": "uses-func", "version": "1", "core_api": ">=0.1"}
        helper = func

    host = _host(("uses-func", Plugin()))
    assert host.statuses["uses-func"].status == "active"
