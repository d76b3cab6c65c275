"""Loading rules: each refusal reason, load order by ``requires``, cycles, essentials.

Most tests drive :class:`PluginHost` directly (no database involved); the ones about
persisted state and the kernel's settings use a real :class:`Kernel` on both databases.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gakwaya.kernel import Kernel
from gakwaya.plugins.host import BlockedVersion, BlocklistError, PluginHost, load_blocklist
from gakwaya.settings import Settings
from tests.plugins.samples import UnknownHook, plugin

BUILTINS = {
    "core.health",
    "core.identity",
    "core.orgs",
    "core.apikeys",
    "core.audit",
    "core.events",
    "core.jobs",
    "core.plugins",
    "core.deploy",
    "core.domains",
}
#: First-party plugins installed in the workspace: these tests are about the host and
#: the plugins they bring, so they leave them out (disabled).
WORKSPACE_PLUGINS = [
    "gakwaya-git",
    "gakwaya-docker",
    "gakwaya-dockerfile",
    "gakwaya-portproxy",
    "gakwaya-caddy",
    "gakwaya-webui",
]


def _host(*extra: tuple[str, object], **kwargs: object) -> PluginHost:
    kwargs.setdefault("disabled", WORKSPACE_PLUGINS)
    host = PluginHost(**kwargs)  # type: ignore[arg-type]
    host.load(extra=list(extra))
    return host


def _status(host: PluginHost, name: str) -> tuple[str, str]:
    s = host.statuses[name]
    return s.status, s.reason


def test_builtins_are_active_and_essential() -> None:
    host = _host()
    assert {n for n, s in host.statuses.items() if s.status != "disabled"} == BUILTINS
    for name in BUILTINS:
        s = host.statuses[name]
        assert (s.status, s.essential, s.builtin, s.source) == ("active", True, True, "builtin")
        assert s.version
    assert "register_routes" in host.statuses["core.health"].hooks


def test_a_good_plugin_is_active_with_its_manifest() -> None:
    host = _host(("x", plugin("gakwaya-good", "2.0", provides=["git:github"])))
    s = host.statuses["gakwaya-good"]
    assert (s.status, s.version, s.provides, s.source) == ("active", "2.0", ["git:github"], "extra")
    assert s.hooks == ["register_permissions"]
    assert host.order[-1] == "gakwaya-good"


def test_invalid_manifest_is_refused_naming_the_field() -> None:
    host = _host(("x", plugin("bad", version="not a version")))
    status, reason = _status(host, "x")
    assert status == "refused"
    assert "invalid manifest" in reason and "'version'" in reason
    assert "x" not in host.order


def test_incompatible_core_api_is_refused() -> None:
    host = _host(("x", plugin("future", core_api=">=0.2")))
    status, reason = _status(host, "future")
    assert status == "refused"
    assert "core_api '>=0.2'" in reason and "0.1" in reason
    assert host.pm.get_plugin("future") is None


def test_blocklisted_version_is_refused_and_newer_passes() -> None:
    blocklist = [BlockedVersion(name="leaky", lowest_good_version="1.5", reason="CVE-1")]
    host = _host(("x", plugin("leaky", "1.4.9")), blocklist=blocklist)
    assert host.statuses["leaky"].status == "refused"
    assert "blocklisted" in host.statuses["leaky"].reason
    assert "CVE-1" in host.statuses["leaky"].reason
    host = _host(("x", plugin("leaky", "1.5")), blocklist=blocklist)
    assert host.statuses["leaky"].status == "active"
    # Names compare as distribution names do (PEP 503), as in the marketplace.
    spelled = [BlockedVersion(name="Gakwaya_Leaky", lowest_good_version="2")]
    host = _host(("x", plugin("gakwaya-leaky", "1.0")), blocklist=spelled)
    assert host.statuses["gakwaya-leaky"].status == "refused"


def test_blocklist_file(tmp_path: Path) -> None:
    path = tmp_path / "block.json"
    path.write_text(json.dumps([{"name": "a", "lowest_good_version": "2", "reason": "r"}]))
    assert load_blocklist(path) == [BlockedVersion(name="a", lowest_good_version="2", reason="r")]
    path.write_text(json.dumps([{"name": "a", "lowest_good_version": "two"}]))
    with pytest.raises(BlocklistError, match="plugin_blocklist"):
        load_blocklist(path)
    with pytest.raises(BlocklistError, match="cannot read"):
        load_blocklist(tmp_path / "missing.json")


def test_missing_plugin_requirement_is_refused() -> None:
    host = _host(("x", plugin("needs", requires=["absent"])))
    assert _status(host, "needs") == ("refused", "missing requirement 'absent'")


def test_missing_capability_is_refused_and_the_refusal_cascades() -> None:
    host = _host(
        ("a", plugin("app", requires=["runtime:docker"], provides=["app:thing"])),
        ("b", plugin("user-of-app", requires=["app:thing"])),
    )
    assert _status(host, "app") == ("refused", "missing requirement 'runtime:docker'")
    assert _status(host, "user-of-app") == ("refused", "missing requirement 'app:thing'")


def test_load_order_follows_requires() -> None:
    host = _host(
        ("c", plugin("third", requires=["second"])),
        ("b", plugin("second", requires=["runtime:docker"])),
        ("a", plugin("docker", provides=["runtime:docker"], requires=["core.jobs"])),
    )
    order = [n for n in host.order if n not in BUILTINS and n not in WORKSPACE_PLUGINS]
    assert order == ["docker", "second", "third"]
    assert all(host.statuses[n].status == "active" for n in order)
    # Registered with pluggy in that order too.
    registered = [host.pm.get_name(p) for p in host.pm.get_plugins()]
    assert set(order) <= set(registered)
    impls = [i.plugin_name for i in host.pm.hook.register_permissions.get_hookimpls()]
    assert [n for n in impls if n not in BUILTINS] == ["docker", "second", "third"]


def test_a_cycle_refuses_its_members_only() -> None:
    host = _host(
        ("a", plugin("ping", requires=["pong"])),
        ("b", plugin("pong", requires=["ping"])),
        ("c", plugin("bystander", requires=["core.audit"])),
        ("d", plugin("hanger-on", requires=["ping"])),
    )
    for name in ("ping", "pong"):
        status, reason = _status(host, name)
        assert status == "refused"
        assert reason in ("dependency cycle: ping -> pong -> ping",)
    assert _status(host, "hanger-on") == ("refused", "missing requirement 'ping'")
    assert host.statuses["bystander"].status == "active"


def test_unknown_hook_is_refused() -> None:
    host = _host(("x", UnknownHook()))
    assert _status(host, "unknown-hook") == (
        "refused",
        "implements unknown hook 'register_wizards'",
    )


def test_duplicate_name_is_refused() -> None:
    host = _host(("a", plugin("twin")), ("b", plugin("twin")))
    assert host.statuses["twin"].status == "active"
    assert host.statuses["twin (extra)"].status == "refused"


def test_import_error_of_a_plugin_module_is_refused() -> None:
    host = _host(modules=["tests.plugins.no_such_module"])
    status, reason = _status(host, "tests.plugins.no_such_module")
    assert status == "refused" and reason.startswith("import failed")


def test_plugin_module_without_manifest_gets_a_permissive_one() -> None:
    host = _host(modules=["tests.plugins.samples"])
    assert host.statuses["tests.plugins.samples"].status == "active"


def test_disabled_by_setting_or_state_but_never_essentials() -> None:
    host = _host(
        ("a", plugin("off-by-setting")),
        ("b", plugin("off-by-operator")),
        disabled=["off-by-setting", "core.jobs"],
        state={"off-by-operator": False, "core.audit": False},
    )
    assert _status(host, "off-by-setting") == ("disabled", "listed in disabled_plugins")
    assert _status(host, "off-by-operator") == ("disabled", "disabled by an operator")
    assert host.statuses["core.jobs"].status == "active"
    assert host.statuses["core.audit"].status == "active"


# With a kernel (both databases) ----------------------------------------------------------


def test_kernel_starts_with_refused_plugins(settings: Settings) -> None:
    k = Kernel(settings, extra_plugins=[("x", plugin("future", core_api=">=9"))])
    try:
        assert k.plugins.statuses["future"].status == "refused"
        assert k.plugins.statuses["core.identity"].status == "active"
    finally:
        k.close()


def test_kernel_reads_the_blocklist_setting(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "blocklist.json"
    path.write_text(json.dumps([{"name": "old", "lowest_good_version": "3"}]))
    s = Settings(**{**{f: getattr(settings, f) for f in settings.__struct_fields__}})
    s.plugin_blocklist = str(path)
    k = Kernel(s, extra_plugins=[("x", plugin("old", "2.9"))])
    try:
        assert k.plugins.statuses["old"].status == "refused"
        assert "no reason given" in k.plugins.statuses["old"].reason
    finally:
        k.close()


def test_trace_mode_logs_every_hook_call(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.plugin_trace = True
    with caplog.at_level(logging.INFO, logger="gakwaya.plugins.trace"):
        k = Kernel(settings, extra_plugins=[("x", plugin("traced"))])
        k.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "gakwaya.plugins.trace"]
    assert any(line.startswith("hook register_permissions plugin traced ok in ") for line in lines)
    assert any("plugin core.orgs" in line for line in lines)
    assert all(line.endswith(" ms") for line in lines)


def test_no_trace_by_default(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gakwaya.plugins.trace"):
        Kernel(settings, extra_plugins=[("x", plugin("quiet"))]).close()
    assert not [r for r in caplog.records if r.name == "gakwaya.plugins.trace"]


# Real entry points: a distribution on a temporary sys.path entry -------------------------


def _distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **packages: str) -> None:
    """Make ``importlib.metadata`` find a distribution whose entry points are ``packages``.

    Each value is the package's ``gakwaya-plugin.toml`` ("" for none); a value
    starting with ``raise`` is the package's code instead (an import failure)."""
    dist = tmp_path / "gakwaya_fake-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gakwaya-fake\nVersion: 1.0\n")
    lines = "".join(f"{name} = {name.replace('-', '_')}.plugin\n" for name in packages)
    (dist / "entry_points.txt").write_text(f"[gakwaya.plugins]\n{lines}")
    for name, text in packages.items():
        package = tmp_path / name.replace("-", "_")
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "plugin.py").write_text(text if text.startswith("raise") else "X = 1\n")
        if text and not text.startswith("raise"):
            (package / "gakwaya-plugin.toml").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_entry_points_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _distribution(
        tmp_path,
        monkeypatch,
        **{
            "ep-good": 'name = "ep-good"\nversion = "1"\ncore_api = ">=0.1"\n',
            "ep-bare": "",
            "ep-renamed": 'name = "other"\nversion = "1"\ncore_api = ">=0.1"\n',
            "ep-invalid": 'name = "ep-invalid"\nversion = "one"\ncore_api = ">=0.1"\n',
            "ep-broken": "raise RuntimeError('boom')\n",
        },
    )
    host = _host()
    assert host.statuses["ep-good"].status == "active"
    assert host.statuses["ep-good"].source == "entry_point"
    assert host.manifests["ep-good"].version == "1"
    status, reason = _status(host, "ep-bare")
    assert status == "refused"
    assert "package 'ep_bare' ships no gakwaya-plugin.toml" in reason
    status, reason = _status(host, "ep-invalid")
    assert status == "refused" and "'version'" in reason and "PEP 440" in reason
    status, reason = _status(host, "ep-renamed")
    assert status == "refused" and "differs from manifest name 'other'" in reason
    status, reason = _status(host, "ep-broken")
    assert status == "refused" and reason.startswith("import failed") and "boom" in reason
    host = _host(disabled=["ep-good"])
    assert _status(host, "ep-good") == ("disabled", "listed in disabled_plugins")
