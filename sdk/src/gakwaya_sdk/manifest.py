"""The plugin manifest: what a plugin is, needs and provides.

A plugin declares it in its ``pyproject.toml`` under ``[tool.gakwaya.plugin]``
(read with :func:`load_manifest` by tooling and the marketplace). Since
``[tool.*]`` tables do not reach wheel metadata, the installed plugin exposes the
same data at run time as a ``MANIFEST`` attribute of the object its entry point
names (a dict or a :class:`Manifest`); the host reads that attribute.

``core_api`` is a PEP 440 specifier set matched against :data:`CORE_API_VERSION`,
the version of the contract in this SDK (hookspecs, types). It changes only when
that contract changes, not with every kernel release.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

import msgspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

#: The plugin API this SDK describes; plugins state ``core_api`` against it.
CORE_API_VERSION = "0.1"

# A distribution-style name (PEP 508 project names), lower case recommended.
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
# ``kind:name``, e.g. ``runtime:docker``, ``proxy:caddy``, ``git:github``.
CAPABILITY_PATTERN = r"^[a-z][a-z0-9_-]*:[a-z0-9][a-z0-9._-]*$"
PERMISSION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
SETTING_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
SETTING_TYPES = ("str", "int", "float", "bool", "list[str]")

_NAME = re.compile(NAME_PATTERN)
_CAPABILITY = re.compile(CAPABILITY_PATTERN)
_PERMISSION = re.compile(PERMISSION_PATTERN)
_SETTING_NAME = re.compile(SETTING_NAME_PATTERN)


class ManifestError(ValueError):
    """A manifest is invalid; the message names the field and the rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"manifest field {field!r}: {message}")
        self.field = field


class SettingField(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One setting a plugin reads; a form can be generated from a list of these."""

    name: str
    type: str = "str"
    secret: bool = False
    default: Any = None
    description: str = ""


class Manifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    version: str
    #: PEP 440 specifier set matched against :data:`CORE_API_VERSION`, e.g. ">=0.1,<0.2".
    core_api: str
    #: Capabilities ``kind:name`` this plugin provides.
    provides: list[str] = []
    #: Plugin names or capabilities (``kind:name``) that must be active first.
    requires: list[str] = []
    #: Names of the permissions the plugin adds (``domain.action``).
    permissions: list[str] = []
    settings: list[SettingField] = []
    homepage: str = ""
    docs: str = ""
    #: Essential plugins cannot be disabled.
    essential: bool = False

    def compatible_with(self, core_api: str = CORE_API_VERSION) -> bool:
        return Version(core_api) in SpecifierSet(self.core_api)


def is_capability(requirement: str) -> bool:
    return ":" in requirement


def validate_manifest(manifest: Manifest) -> Manifest:
    """Check every field's rule; raise :class:`ManifestError` naming the first bad one."""
    if not _NAME.match(manifest.name):
        raise ManifestError("name", f"{manifest.name!r} does not match {NAME_PATTERN}")
    try:
        Version(manifest.version)
    except InvalidVersion:
        raise ManifestError("version", f"{manifest.version!r} is not a PEP 440 version") from None
    try:
        SpecifierSet(manifest.core_api)
    except InvalidSpecifier:
        raise ManifestError(
            "core_api", f"{manifest.core_api!r} is not a PEP 440 specifier set"
        ) from None
    if not manifest.core_api.strip():
        raise ManifestError("core_api", "must not be empty (e.g. '>=0.1,<0.2')")
    for cap in manifest.provides:
        if not _CAPABILITY.match(cap):
            raise ManifestError("provides", f"{cap!r} is not a capability 'kind:name'")
    for req in manifest.requires:
        ok = _CAPABILITY.match(req) if is_capability(req) else _NAME.match(req)
        if not ok:
            raise ManifestError(
                "requires", f"{req!r} is neither a plugin name nor a capability 'kind:name'"
            )
    for perm in manifest.permissions:
        if not _PERMISSION.match(perm):
            raise ManifestError("permissions", f"{perm!r} does not match {PERMISSION_PATTERN}")
    seen: set[str] = set()
    for setting in manifest.settings:
        if not _SETTING_NAME.match(setting.name):
            raise ManifestError(
                "settings", f"{setting.name!r} does not match {SETTING_NAME_PATTERN}"
            )
        if setting.name in seen:
            raise ManifestError("settings", f"{setting.name!r} is declared twice")
        seen.add(setting.name)
        if setting.type not in SETTING_TYPES:
            raise ManifestError(
                "settings",
                f"{setting.name!r} has type {setting.type!r}; "
                f"expected one of {', '.join(SETTING_TYPES)}",
            )
    for field in ("homepage", "docs"):
        url = getattr(manifest, field)
        if url and not url.startswith(("https://", "http://")):
            raise ManifestError(field, f"{url!r} is not an http(s) URL")
    return manifest


def manifest_from_dict(data: Mapping[str, Any] | Manifest) -> Manifest:
    """Convert and validate; a wrong type or unknown field raises :class:`ManifestError`."""
    if isinstance(data, Manifest):
        return validate_manifest(data)
    try:
        manifest = msgspec.convert(dict(data), Manifest)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r"at `\$\.([A-Za-z_]+)", message)
        missing = re.search(r"missing required field `([A-Za-z_]+)`", message)
        unknown = re.search(r"unknown field `([A-Za-z_]+)`", message)
        found = match or missing or unknown
        field = found.group(1) if found else "?"
        raise ManifestError(field, message) from None
    return validate_manifest(manifest)


def load_manifest(pyproject: str | Mapping[str, Any]) -> Manifest:
    """Read ``[tool.gakwaya.plugin]`` from a pyproject's text or parsed dict."""
    if isinstance(pyproject, str):
        try:
            data: Mapping[str, Any] = tomllib.loads(pyproject)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError("pyproject", f"not valid TOML: {exc}") from None
    else:
        data = pyproject
    table = data.get("tool", {}).get("gakwaya", {}).get("plugin")
    if not isinstance(table, Mapping):
        raise ManifestError("tool.gakwaya.plugin", "the table is missing")
    return manifest_from_dict(table)
