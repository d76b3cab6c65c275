"""Choosing the release to install, and checking the downloaded wheel."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from gakwaya_marketplace.blocklist import BlockEntry, is_blocked
from gakwaya_marketplace.builder import WheelInfo
from gakwaya_marketplace.errors import (
    IntegrityError,
    NoInstallableRelease,
    PluginNotFound,
    SelectionError,
    SourceOnlyRelease,
    WheelMismatch,
)
from gakwaya_marketplace.index import Index, Release

#: What a wheel file name may hold (PEP 427 names are narrower still): nothing that
#: could make a path (``/``, ``..`` as a whole), an option (leading ``-``) or shell syntax.
_WHEEL_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,250}\.whl")


def skip_reason(
    name: str, release: Release, core_api_version: Version, blocklist: list[BlockEntry]
) -> str | None:
    """Why ``release`` cannot be installed, or ``None`` when it can."""
    if release.yanked:
        return "yanked"
    # The index keys a plugin by its distribution name, which is also the plugin's own
    # (the manifest's, the host's): one name for the blocklist, the host and operators.
    # read_wheel refuses a wheel that says otherwise; an index built elsewhere may not.
    plugin_name = release.manifest.get("name")
    key = canonicalize_name(name)
    if not isinstance(plugin_name, str) or canonicalize_name(plugin_name) != key:
        return (
            f"its manifest names the plugin {plugin_name!r}, not {name}: a plugin's name "
            "must be its distribution's name"
        )
    blocked = is_blocked(name, release.version, blocklist)
    if blocked is not None:
        return f"blocklisted: {blocked}"
    try:
        spec = SpecifierSet(release.core_api)
    except InvalidSpecifier:
        return f"core_api {release.core_api!r} is not a PEP 440 specifier"
    if not spec.contains(core_api_version, prereleases=True):
        return f"needs core API {release.core_api}, this panel has {core_api_version}"
    return None


def pick_release(
    index: Index,
    name: str,
    core_api_version: str | Version,
    blocklist: list[BlockEntry] | None = None,
) -> Release:
    """The newest release of ``name`` that is not yanked, not blocklisted and whose
    ``core_api`` admits ``core_api_version``.

    Raises :class:`PluginNotFound`, or :class:`NoInstallableRelease` whose message and
    ``reasons`` (version → reason) say why each release was skipped.
    """
    key = canonicalize_name(name)
    plugin = index.plugins.get(key)
    if plugin is None:
        raise PluginNotFound(f"the index has no plugin named {name!r}")
    try:
        api = Version(str(core_api_version))
    except InvalidVersion as exc:
        raise SelectionError(f"core API version {core_api_version!r} is not PEP 440") from exc
    reasons: dict[str, str] = {}
    candidates: list[tuple[Version, Release]] = []
    for release in plugin.versions:
        try:
            version = Version(release.version)
        except InvalidVersion:
            reasons[release.version] = "not a PEP 440 version"
            continue
        reason = skip_reason(key, release, api, blocklist or [])
        if reason is None:
            candidates.append((version, release))
        else:
            reasons[release.version] = reason
    if candidates:
        return max(candidates, key=lambda pair: pair[0])[1]
    if not reasons:
        raise NoInstallableRelease(f"{name} has no release in the index", reasons)
    detail = "; ".join(f"{v}: {r}" for v, r in reasons.items())
    raise NoInstallableRelease(f"no installable release of {name} ({detail})", reasons)


def check_wheel(release: Release, data: bytes) -> None:
    """:class:`IntegrityError` unless ``data`` has the release's size and sha256."""
    if len(data) != release.size:
        raise IntegrityError(
            f"wheel for {release.version} is {len(data)} bytes, the index says {release.size}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != release.sha256.lower():
        raise IntegrityError(
            f"wheel for {release.version} has sha256 {digest}, the index says {release.sha256}"
        )


def wheel_filename(name: str, release: Release) -> str:
    """The file name to store ``release``'s wheel under, taken from its URL's last path
    segment only after checking it: a valid wheel filename of ``name`` at the release's
    version. Never a path: the caller joins it to a directory of its own.

    :class:`SourceOnlyRelease` when the URL is not a wheel, :class:`WheelMismatch` when it
    names another distribution or version, :class:`SelectionError` when it is unusable.
    """
    path = urlsplit(release.wheel_url).path
    filename = unquote(path.rsplit("/", 1)[-1])
    if not filename.endswith(".whl"):
        raise SourceOnlyRelease(
            f"{name} {release.version} is published as {filename or release.wheel_url!r}, "
            "not a wheel; only wheels are installed (a source build would run its code here)"
        )
    if not _WHEEL_FILENAME.fullmatch(filename):
        raise SelectionError(
            f"{name} {release.version}: wheel file name {filename!r} has unexpected characters"
        )
    try:
        file_name, file_version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise SelectionError(f"{name} {release.version}: {filename!r}: {exc}") from exc
    if file_name != canonicalize_name(name):
        raise WheelMismatch(
            f"the index entry for {name} {release.version} points at a wheel of {file_name}"
        )
    try:
        same_version = file_version == Version(release.version)
    except InvalidVersion:
        same_version = False
    if not same_version:
        raise WheelMismatch(
            f"the index entry for {name} {release.version} points at a wheel of "
            f"version {file_version}"
        )
    return filename


def check_wheel_matches(name: str, release: Release, info: WheelInfo) -> None:
    """:class:`WheelMismatch` unless the wheel read by :func:`read_wheel` is ``name`` at
    the release's version (its METADATA) and carries the manifest the index advertised
    (which is what compatibility and blocklist checks were made against)."""
    if info.name != canonicalize_name(name):
        raise WheelMismatch(
            f"the wheel for {name} {release.version} is {info.name!r} according to its "
            "METADATA; refusing a wheel that is not the plugin asked for"
        )
    if Version(info.version) != Version(release.version):
        raise WheelMismatch(
            f"the wheel for {name} {release.version} is version {info.version} "
            "according to its METADATA"
        )
    if info.manifest != release.manifest:
        raise WheelMismatch(
            f"the manifest inside the wheel for {name} {release.version} differs from the "
            f"index entry (wheel: {info.manifest.get('name')!r} "
            f"{info.manifest.get('core_api')!r}, index: {release.manifest.get('name')!r} "
            f"{release.manifest.get('core_api')!r})"
        )
