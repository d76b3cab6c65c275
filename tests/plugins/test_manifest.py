"""The manifest schema in the SDK: every field's rule, and a message naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gakwaya_sdk.manifest import (
    CORE_API_VERSION,
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    SettingField,
    load_manifest,
    manifest_from_dict,
    manifest_toml,
    parse_manifest_toml,
    read_packaged_manifest,
    setting_value,
)

PYPROJECT = """
[project]
name = "gakwaya-docker"
version = "1.2.0"

[tool.gakwaya.plugin]
name = "gakwaya-docker"
version = "1.2.0"
core_api = ">=0.1,<0.2"
provides = ["runtime:docker"]
requires = ["proxy:caddy", "core.jobs"]
permissions = ["docker.read"]
homepage = "https://example.com/docker"

[[tool.gakwaya.plugin.settings]]
name = "socket"
type = "str"
default = "/var/run/docker.sock"
description = "Docker's socket"

[[tool.gakwaya.plugin.settings]]
name = "registry_password"
secret = true
"""


def test_load_manifest_reads_the_tool_table() -> None:
    m = load_manifest(PYPROJECT)
    assert m.name == "gakwaya-docker"
    assert m.version == "1.2.0"
    assert m.provides == ["runtime:docker"]
    assert m.requires == ["proxy:caddy", "core.jobs"]
    assert m.settings == [
        SettingField(name="socket", default="/var/run/docker.sock", description="Docker's socket"),
        SettingField(name="registry_password", secret=True),
    ]
    assert m.essential is False
    assert m.compatible_with(CORE_API_VERSION)
    assert not m.compatible_with("0.2")


def test_load_manifest_accepts_a_parsed_dict() -> None:
    data = {"tool": {"gakwaya": {"plugin": {"name": "x", "version": "1", "core_api": ">=0"}}}}
    assert load_manifest(data) == Manifest(name="x", version="1", core_api=">=0")


def test_missing_table_is_named() -> None:
    with pytest.raises(ManifestError, match=r"tool\.gakwaya\.plugin"):
        load_manifest("[project]\nname = 'x'\n")


GOOD: dict[str, Any] = {"name": "p", "version": "1.0", "core_api": ">=0.1"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "-bad"}, "name"),
        ({"name": "has space"}, "name"),
        ({"version": "one"}, "version"),
        ({"core_api": "0.1 or later"}, "core_api"),
        ({"core_api": ""}, "core_api"),
        ({"provides": ["docker"]}, "provides"),
        ({"provides": ["Runtime:docker"]}, "provides"),
        ({"provides": [1]}, "provides"),
        ({"requires": ["bad name!"]}, "requires"),
        ({"requires": ["kind:"]}, "requires"),
        ({"permissions": ["nodot"]}, "permissions"),
        ({"settings": [{"name": "Bad"}]}, "settings"),
        ({"settings": [{"name": "a", "type": "dict"}]}, "settings"),
        ({"settings": [{"name": "a"}, {"name": "a"}]}, "settings"),
        ({"homepage": "ftp://x"}, "homepage"),
        ({"docs": "javascript:alert(1)"}, "docs"),
        ({"essential": "yes"}, "essential"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_rule_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_from_dict({**GOOD, **change})
    assert caught.value.field == field
    assert f"'{field}'" in str(caught.value)


def test_missing_required_field_is_named() -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_from_dict({"name": "p", "version": "1"})
    assert caught.value.field == "core_api"


def test_good_manifest_passes() -> None:
    m = manifest_from_dict(
        {**GOOD, "provides": ["git:github"], "requires": ["x", "proxy:caddy"], "docs": "https://d"}
    )
    assert m.requires == ["x", "proxy:caddy"]


def test_the_reference_page_example_is_valid() -> None:
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "plugins" / "manifest.md"
    (toml,) = re.findall(r"```toml\n(.*?)```", doc.read_text(), flags=re.S)
    m = load_manifest(toml)
    assert m.name == "gakwaya-docker"
    assert [s.name for s in m.settings] == ["socket", "registry_password"]


# Settings' scope, required and typed defaults ----------------------------------------


def _with_setting(**setting: Any) -> dict[str, Any]:
    return {"name": "p", "version": "1", "core_api": ">=0.1", "settings": [setting]}


@pytest.mark.parametrize(
    ("setting", "rule"),
    [
        ({"name": "s", "scope": "team"}, "has scope 'team'; expected one of installation"),
        ({"name": "s", "type": "int", "default": "3"}, "'s' default: must be of type int"),
        ({"name": "s", "type": "bool", "default": 1}, "'s' default: must be of type bool"),
        ({"name": "s", "type": "list[str]", "default": "a"}, "must be of type list[str]"),
    ],
)
def test_setting_rules(setting: dict[str, Any], rule: str) -> None:
    with pytest.raises(ManifestError) as info:
        manifest_from_dict(_with_setting(**setting))
    assert info.value.field == "settings"
    assert rule in str(info.value)


def test_setting_value_is_strict() -> None:
    field = SettingField(name="n", type="int")
    assert setting_value(field, 3) == 3
    for bad in ("3", 3.5, True, None):
        with pytest.raises(ValueError, match="must be of type int"):
            setting_value(field, bad)
    assert setting_value(SettingField(name="l", type="list[str]"), ["a"]) == ["a"]
    assert setting_value(SettingField(name="f", type="float"), 1) == 1.0


def test_organization_scoped_setting() -> None:
    m = manifest_from_dict(_with_setting(name="channel", scope="organization", required=True))
    assert m.settings[0].scope == "organization" and m.settings[0].required


def test_version_defaults_to_the_project_version() -> None:
    text = PYPROJECT.replace('version = "1.2.0"\ncore_api', "core_api")
    assert load_manifest(text).version == "1.2.0"
    no_project = '[tool.gakwaya.plugin]\nname = "x"\ncore_api = ">=0.1"\n'
    with pytest.raises(ManifestError) as info:
        load_manifest(no_project)
    assert info.value.field == "version"


# The packaged copy ---------------------------------------------------------------------


def test_manifest_toml_round_trips() -> None:
    manifest = load_manifest(PYPROJECT)
    text = manifest_toml(manifest)
    assert text.startswith("# Written by")
    assert parse_manifest_toml(text) == manifest
    assert parse_manifest_toml(text.encode()) == manifest
    bare = Manifest(name="b", version="1", core_api=">=0.1")
    assert parse_manifest_toml(manifest_toml(bare)) == bare


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b"\xff", MANIFEST_FILE),
        ("name = ", MANIFEST_FILE),
        ('name = "x"\nversion = "1"\n', "core_api"),
    ],
)
def test_bad_packaged_file(text: str | bytes, field: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest_toml(text)
    assert info.value.field == field


def test_read_packaged_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg_with_manifest"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / MANIFEST_FILE).write_text('name = "w"\nversion = "2.0"\ncore_api = ">=0.1"\n')
    (tmp_path / "pkg_without").mkdir()
    (tmp_path / "pkg_without" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    manifest = read_packaged_manifest("pkg_with_manifest")
    assert manifest is not None and manifest.version == "2.0"
    assert read_packaged_manifest("pkg_without") is None
    assert read_packaged_manifest("no_such_package_here") is None


# python -m gakwaya_sdk manifest check|write --------------------------------------------

PROJECT = """
[project]
name = "hello"
version = "0.4.0"

[project.entry-points."gakwaya.plugins"]
hello = "gakwaya_hello.plugin"

[tool.gakwaya.plugin]
name = "hello"
core_api = ">=0.1,<0.2"
"""


def _project(root: Path, pyproject: str = PROJECT) -> Path:
    (root / "src" / "gakwaya_hello").mkdir(parents=True)
    (root / "src" / "gakwaya_hello" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(pyproject)
    return root / "src" / "gakwaya_hello" / MANIFEST_FILE


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gakwaya_sdk", "manifest", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_tool_writes_then_checks(tmp_path: Path) -> None:
    packaged = _project(tmp_path)
    r = _tool("check", str(tmp_path))
    assert (
        r.returncode == 1 and "is missing: run 'python -m gakwaya_sdk manifest write'" in r.stderr
    )
    r = _tool("write", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert parse_manifest_toml(packaged.read_text()).version == "0.4.0"
    r = _tool("check", str(tmp_path))
    assert r.returncode == 0 and r.stdout.strip() == "OK: hello 0.4.0 (core_api >=0.1,<0.2)"
    # The pyproject changes and the packaged copy is now stale.
    (tmp_path / "pyproject.toml").write_text(PROJECT.replace("0.4.0", "0.5.0"))
    r = _tool("check", str(tmp_path))
    assert r.returncode == 1 and "differs from pyproject.toml" in r.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('hello = "gakwaya_hello.plugin"', 'other = "gakwaya_hello.plugin"'), "named 'other'"),
        (('hello = "gakwaya_hello.plugin"', 'hello = "missing_pkg.plugin"'), "'missing_pkg'"),
        (('core_api = ">=0.1,<0.2"', 'core_api = "soon"'), "field 'core_api'"),
        (('[project.entry-points."gakwaya.plugins"]\n', ""), "exactly one entry"),
    ],
)
def test_tool_refuses_bad_projects(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    pyproject = PROJECT.replace(*change)
    if not change[1]:
        pyproject = pyproject.replace('hello = "gakwaya_hello.plugin"\n', "")
    _project(tmp_path, pyproject)
    r = _tool("write", str(tmp_path))
    assert r.returncode == 1 and message in r.stderr, r.stderr


@pytest.mark.parametrize("action", ["check", "write"])
def test_tool_refuses_a_plugin_named_unlike_its_distribution(tmp_path: Path, action: str) -> None:
    # The scaffold's old layout: distribution gakwaya-hello, plugin hello. Operators
    # would install one name and disable or configure another.
    pyproject = PROJECT.replace('[project]\nname = "hello"', '[project]\nname = "gakwaya-hello"')
    packaged = _project(tmp_path, pyproject)
    r = _tool(action, str(tmp_path))
    assert r.returncode == 1, r.stdout
    assert "the manifest's name 'hello' differs from the distribution's name 'gakwaya-hello'" in (
        r.stderr
    )
    assert "a plugin's name is its distribution's name" in r.stderr
    assert not packaged.exists()


def test_tool_refuses_a_project_without_a_name(tmp_path: Path) -> None:
    _project(tmp_path, PROJECT.replace('[project]\nname = "hello"\n', "[project]\n"))
    r = _tool("write", str(tmp_path))
    assert r.returncode == 1 and "[project].name is missing" in r.stderr, r.stderr


def test_tool_compares_names_normalised(tmp_path: Path) -> None:
    # PEP 503: case and runs of '-', '_', '.' do not make another name.
    pyproject = (
        PROJECT.replace('[project]\nname = "hello"', '[project]\nname = "Gakwaya_Hello"')
        .replace("hello = ", "gakwaya-hello = ")
        .replace('plugin]\nname = "hello"', 'plugin]\nname = "gakwaya-hello"')
    )
    _project(tmp_path, pyproject)
    assert _tool("write", str(tmp_path)).returncode == 0
    r = _tool("check", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK: gakwaya-hello 0.4.0")
