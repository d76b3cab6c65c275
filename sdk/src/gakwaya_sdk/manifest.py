"""The plugin manifest: what a plugin is, needs and provides.

A plugin declares it in its ``pyproject.toml`` under ``[tool.gakwaya.plugin]``;
``version`` may be left out there, and is then the project's version. Since
``[tool.*]`` tables do not reach wheel metadata, the same data ships inside the
package as :data:`MANIFEST_FILE` (``<package>/gakwaya-plugin.toml``), written
from the pyproject by ``python -m gakwaya_sdk manifest write`` and checked
against it by ``python -m gakwaya_sdk manifest check``. The plugin host and the
marketplace read that packaged file (:func:`read_packaged_manifest`), so the
pyproject stays the one place an author edits.

``core_api`` is a PEP 440 specifier set matched against :data:`CORE_API_VERSION`,
the version of the contract in this SDK (hookspecs, types). It changes only when
that contract changes, not with every kernel release.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

import msgspec
import tomli_w
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
SETTING_SCOPES = ("installation", "organization")

#: The manifest's file name inside a plugin's top-level package.
MANIFEST_FILE = "gakwaya-plugin.toml"

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
    #: Stored encrypted, never shown back (only whether it is set).
    secret: bool = False
    default: Any = None
    description: str = ""
    #: ``installation`` (one value, set by a superuser) or ``organization`` (each
    #: organization's admins may set their own; the installation value is the default).
    scope: str = "installation"
    #: The plugin cannot work until it is set (no default): listed as missing.
    required: bool = False


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
        if setting.scope not in SETTING_SCOPES:
            raise ManifestError(
                "settings",
                f"{setting.name!r} has scope {setting.scope!r}; "
                f"expected one of {', '.join(SETTING_SCOPES)}",
            )
        if setting.default is not None:
            try:
                setting_value(setting, setting.default)
            except ValueError as exc:
                raise ManifestError("settings", f"{setting.name!r} default: {exc}") from None
    for field in ("homepage", "docs"):
        url = getattr(manifest, field)
        if url and not url.startswith(("https://", "http://")):
            raise ManifestError(field, f"{url!r} is not an http(s) URL")
    return manifest


_SETTING_PYTHON_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list[str]": list[str],
}


def setting_value(setting: SettingField, value: Any) -> Any:
    """``value`` converted to the setting's type; ``ValueError`` names the rule broken.

    Strict: ``"1"`` is not an int and ``1`` is not a bool (a form or the API
    sends JSON of the right type)."""
    try:
        return msgspec.convert(value, _SETTING_PYTHON_TYPES[setting.type], strict=True)
    except msgspec.ValidationError:
        raise ValueError(f"must be of type {setting.type}") from None


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
    table = dict(table)
    if "version" not in table:
        version = data.get("project", {}).get("version")
        if not isinstance(version, str):
            raise ManifestError(
                "version", "set it in [tool.gakwaya.plugin] or as a static [project] version"
            )
        table["version"] = version
    return manifest_from_dict(table)


def manifest_toml(manifest: Manifest) -> str:
    """The packaged file's text for ``manifest`` (defaults left out, keys sorted)."""
    defaults = Manifest(name="", version="", core_api="")
    data: dict[str, Any] = {}
    for field in manifest.__struct_fields__:
        value = getattr(manifest, field)
        if field != "settings" and value == getattr(defaults, field):
            continue
        data[field] = value
    data["settings"] = [
        {k: v for k, v in msgspec.to_builtins(s).items() if v is not None}
        for s in manifest.settings
    ]
    if not data["settings"]:
        del data["settings"]
    header = "# Written by 'python -m gakwaya_sdk manifest write' from pyproject.toml.\n"
    return header + tomli_w.dumps(data)


def parse_manifest_toml(text: str | bytes) -> Manifest:
    """Read a packaged manifest file's text."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ManifestError(MANIFEST_FILE, "is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(MANIFEST_FILE, f"not valid TOML: {exc}") from None
    return manifest_from_dict(data)


def read_packaged_manifest(package: str) -> Manifest | None:
    """The manifest shipped in the installed ``package`` (a top-level import name),
    or ``None`` when the package has no :data:`MANIFEST_FILE`."""
    try:
        resource = resources.files(package).joinpath(MANIFEST_FILE)
    except (ModuleNotFoundError, TypeError):
        return None
    if not resource.is_file():
        return None
    return parse_manifest_toml(resource.read_bytes())
