"""Choosing the release to install, and checking the downloaded wheel."""

from __future__ import annotations

import hashlib

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gakwaya_marketplace.blocklist import BlockEntry, is_blocked
from gakwaya_marketplace.errors import (
    IntegrityError,
    NoInstallableRelease,
    PluginNotFound,
    SelectionError,
)
from gakwaya_marketplace.index import Index, Release


def skip_reason(
    name: str, release: Release, core_api_version: Version, blocklist: list[BlockEntry]
) -> str | None:
    """Why ``release`` cannot be installed, or ``None`` when it can."""
    if release.yanked:
        return "yanked"
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
