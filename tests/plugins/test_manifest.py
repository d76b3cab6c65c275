"""The manifest schema in the SDK: every field's rule, and a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from gakwaya_sdk.manifest import (
    CORE_API_VERSION,
    Manifest,
    ManifestError,
    SettingField,
    load_manifest,
    manifest_from_dict,
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
