"""Turn built wheels into an index.

Convention (the plugin host may read an installed plugin the same way): a plugin
wheel ships its manifest as the package data file ``<package>/gakwaya-plugin.toml``
in exactly one top-level package.
The file holds the same keys as the ``[tool.gakwaya.plugin]`` table of the plugin's
pyproject, at the top level of the TOML document (``name``, ``version``, ``core_api``,
``provides``, ``requires``…), checked by the SDK's own rules
(:func:`gakwaya_sdk.manifest.manifest_from_dict`); its ``version`` must equal the
wheel's version and its ``name`` the wheel's distribution name (PEP 503-normalised):
a plugin has one name, which operators install, enable and configure it by.

Only wheels are published: a source distribution would run arbitrary build code on the
panel's host at install time.
"""

from __future__ import annotations

import email.parser
import hashlib
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from gakwaya_marketplace.errors import WheelRefused
from gakwaya_marketplace.index import Index, Plugin, Release
from gakwaya_sdk.manifest import MANIFEST_FILE, ManifestError, manifest_from_dict


@dataclass(frozen=True, kw_only=True)
class WheelInfo:
    """What the builder reads from one wheel."""

    name: str  #: normalised distribution name
    version: str
    summary: str
    homepage: str
    manifest: dict[str, Any]
    sha256: str
    size: int
    filename: str


def file_sha256(path: Path) -> tuple[str, int]:
    """Hex sha256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _homepage(metadata: Any) -> str:
    home = metadata.get("Home-page")
    if home and home.strip().upper() != "UNKNOWN":
        return str(home).strip()
    for entry in metadata.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        if label.strip().lower().replace("-", "").replace("_", "") == "homepage":
            return url.strip()
    return ""


def read_wheel(path: Path) -> WheelInfo:
    """Read and check one wheel; :class:`WheelRefused` says why it cannot be published."""
    filename = path.name
    if not filename.endswith(".whl"):
        raise WheelRefused(
            f"{filename}: only wheels (.whl) are published, not source distributions"
        )
    try:
        file_name, file_version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise WheelRefused(f"{filename}: not a valid wheel filename: {exc}") from exc
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WheelRefused(f"{filename}: not a readable zip archive: {exc}") from exc
    with archive:
        names = archive.namelist()
        metadata_files = [
            n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        if len(metadata_files) != 1:
            raise WheelRefused(
                f"{filename}: expected one .dist-info/METADATA, found {len(metadata_files)}"
            )
        metadata = email.parser.BytesParser().parsebytes(archive.read(metadata_files[0]))
        manifests = [
            n
            for n in names
            if n.count("/") == 1
            and n.endswith("/" + MANIFEST_FILE)
            and not n.split("/")[0].endswith((".dist-info", ".data"))
        ]
        if not manifests:
            raise WheelRefused(
                f"{filename}: no plugin manifest: a plugin wheel ships "
                f"<package>/{MANIFEST_FILE} as package data"
            )
        if len(manifests) > 1:
            raise WheelRefused(
                f"{filename}: several plugin manifests: {', '.join(sorted(manifests))}"
            )
        raw_manifest = archive.read(manifests[0])

    meta_name = metadata.get("Name")
    meta_version = metadata.get("Version")
    if not meta_name or not meta_version:
        raise WheelRefused(f"{filename}: METADATA lacks Name or Version")
    meta_name, meta_version = str(meta_name).strip(), str(meta_version).strip()
    if canonicalize_name(meta_name) != file_name:
        raise WheelRefused(
            f"{filename}: the filename says {file_name!r} but METADATA says {meta_name!r}"
        )
    try:
        parsed_version = Version(meta_version)
    except InvalidVersion as exc:
        raise WheelRefused(f"{filename}: METADATA version {meta_version!r} is invalid") from exc
    if parsed_version != file_version:
        raise WheelRefused(
            f"{filename}: the filename says version {file_version} but METADATA says {meta_version}"
        )

    manifest = _parse_manifest(filename, manifests[0], raw_manifest, parsed_version)
    if canonicalize_name(str(manifest["name"])) != file_name:
        raise WheelRefused(
            f"{filename}: the manifest names the plugin {manifest['name']!r} but the "
            f"distribution is {meta_name!r}: a plugin's name must be its distribution's "
            "name (compared PEP 503-normalised)"
        )
    sha256, size = file_sha256(path)
    return WheelInfo(
        name=str(file_name),
        version=str(parsed_version),
        summary=str(metadata.get("Summary") or "").strip(),
        homepage=_homepage(metadata),
        manifest=manifest,
        sha256=sha256,
        size=size,
        filename=filename,
    )


def _parse_manifest(filename: str, member: str, raw: bytes, version: Version) -> dict[str, Any]:
    """The manifest as shipped, once the SDK's rules accept it."""
    try:
        manifest = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WheelRefused(f"{filename}: {member} is not valid TOML: {exc}") from exc
    # TOML dates/times are not JSON: the manifest must round-trip through the index.
    for key, value in manifest.items():
        if not _json_safe(value):
            raise WheelRefused(f"{filename}: manifest key {key!r} holds a TOML date/time")
    try:
        checked = manifest_from_dict(manifest)
    except ManifestError as exc:
        raise WheelRefused(f"{filename}: {member}: {exc}") from exc
    if Version(checked.version) != version:
        raise WheelRefused(
            f"{filename}: the manifest says version {checked.version!r} but the wheel is {version}"
        )
    return manifest


def _json_safe(value: object) -> bool:
    if isinstance(value, dict):
        return all(_json_safe(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return isinstance(value, str | int | float | bool)


def _join_url(base_url: str, filename: str) -> str:
    return base_url.rstrip("/") + "/" + filename


def build_index(
    wheels: Iterable[Path],
    base_url: str,
    existing: Index | None = None,
    *,
    now: datetime | None = None,
) -> Index:
    """A new index: ``existing`` plus one release per wheel.

    Every wheel is checked first; one refused wheel refuses the whole build (nothing is
    half-published). A version already in ``existing`` with the same sha256 is kept as
    it is (its publication time and yank flag too); with a different sha256 it is
    refused: a published version is immutable. ``wheel_url`` is ``base_url`` joined
    with the wheel's filename. Plugin summary and homepage come from the newest release.
    """
    now = now or datetime.now(UTC)
    infos = [read_wheel(Path(w)) for w in wheels]

    plugins: dict[str, Plugin] = {}
    if existing is not None:
        for key, plugin in existing.plugins.items():
            plugins[key] = Plugin(
                name=plugin.name,
                summary=plugin.summary,
                homepage=plugin.homepage,
                versions=list(plugin.versions),
            )

    seen: dict[tuple[str, str], str] = {}
    for info in infos:
        release_key = (info.name, canonicalize_version(info.version))
        if release_key in seen and seen[release_key] != info.sha256:
            raise WheelRefused(
                f"{info.filename}: two different wheels for {info.name} {info.version}"
            )
        seen[release_key] = info.sha256
        plugin = plugins.setdefault(info.name, Plugin(name=info.name))
        current = next(
            (r for r in plugin.versions if Version(r.version) == Version(info.version)), None
        )
        if current is not None:
            if current.sha256 != info.sha256:
                raise WheelRefused(
                    f"{info.filename}: {info.name} {info.version} is already published "
                    "with a different sha256; publish a new version instead"
                )
            continue
        plugin.versions.append(
            Release(
                version=info.version,
                manifest=info.manifest,
                wheel_url=_join_url(base_url, info.filename),
                sha256=info.sha256,
                size=info.size,
                core_api=str(info.manifest["core_api"]),
                published_at=now,
            )
        )

    newest_info: dict[str, WheelInfo] = {}
    for info in infos:
        best = newest_info.get(info.name)
        if best is None or Version(info.version) > Version(best.version):
            newest_info[info.name] = info
    for name, plugin in plugins.items():
        plugin.versions.sort(key=lambda r: Version(r.version), reverse=True)
        newest = newest_info.get(name)
        if newest is not None and Version(newest.version) == Version(plugin.versions[0].version):
            plugin.summary, plugin.homepage = newest.summary, newest.homepage

    return Index(generated_at=now, plugins=dict(sorted(plugins.items())))
