"""``python -m gakwaya_sdk manifest check|write [PROJECT_DIR]``: the manifest validator.

``check`` validates ``[tool.gakwaya.plugin]`` of the project's pyproject, that its
``name`` is the distribution's (``[project].name``), the entry point in
``[project.entry-points."gakwaya.plugins"]`` (exactly one, named like the plugin), and
that the packaged copy ``<package>/gakwaya-plugin.toml`` says the same.
``write`` writes that packaged copy. Run ``write`` after editing the manifest, and
``check`` in your tests or CI; the marketplace refuses a wheel without the file.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from gakwaya_sdk.manifest import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    load_manifest,
    manifest_toml,
    parse_manifest_toml,
)

ENTRY_POINT_GROUP = "gakwaya.plugins"
#: Operators install a plugin by its distribution name and enable, disable and
#: configure it by the name the panel loads it under: one name for both.
NAME_RULE = (
    "a plugin's name is its distribution's name ([project].name, compared "
    "PEP 503-normalised), and its entry point has the same name"
)


class ProjectError(Exception):
    """The project is not laid out as a plugin; the message says what to fix."""


def _pyproject(project: Path) -> Mapping[str, Any]:
    path = project / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path}: not valid TOML: {exc}") from None


def project_manifest(project: Path) -> tuple[Manifest, Path]:
    """The validated manifest and the path of its packaged copy."""
    data = _pyproject(project)
    try:
        manifest = load_manifest(data)
    except ManifestError as exc:
        raise ProjectError(f"{project / 'pyproject.toml'}: {exc}") from None
    dist = data.get("project", {}).get("name")
    if not isinstance(dist, str) or not dist:
        raise ProjectError(f"{project / 'pyproject.toml'}: [project].name is missing ({NAME_RULE})")
    if canonicalize_name(dist) != canonicalize_name(manifest.name):
        raise ProjectError(
            f"the manifest's name {manifest.name!r} differs from the distribution's name "
            f"{dist!r} ([project].name): {NAME_RULE}; set [tool.gakwaya.plugin] "
            f"name = {dist!r} and name the entry point the same"
        )
    eps = data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not isinstance(eps, Mapping) or len(eps) != 1:
        raise ProjectError(
            f'[project.entry-points."{ENTRY_POINT_GROUP}"] must hold exactly one entry, '
            f'{manifest.name} = "<package>.plugin"'
        )
    ((ep_name, target),) = eps.items()
    if ep_name != manifest.name:
        raise ProjectError(
            f"the entry point is named {ep_name!r}; it must be the plugin's name {manifest.name!r}"
        )
    package = str(target).split(":", 1)[0].split(".", 1)[0]
    for base in (project / "src", project):
        if (base / package / "__init__.py").is_file():
            return manifest, base / package / MANIFEST_FILE
    raise ProjectError(f"package {package!r} (from the entry point) not found in src/ or .")


def check(project: Path) -> Manifest:
    manifest, packaged = project_manifest(project)
    if not packaged.is_file():
        raise ProjectError(f"{packaged} is missing: run 'python -m gakwaya_sdk manifest write'")
    try:
        shipped = parse_manifest_toml(packaged.read_bytes())
    except ManifestError as exc:
        raise ProjectError(f"{packaged}: {exc}") from None
    if shipped != manifest:
        raise ProjectError(
            f"{packaged} differs from pyproject.toml: run 'python -m gakwaya_sdk manifest write'"
        )
    return manifest


def write(project: Path) -> Path:
    manifest, packaged = project_manifest(project)
    packaged.write_text(manifest_toml(manifest), encoding="utf-8")
    return packaged


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gakwaya_sdk")
    sub = parser.add_subparsers(dest="group", required=True)
    group = sub.add_parser("manifest", help="validate or write a plugin's manifest")
    actions = group.add_subparsers(dest="action", required=True)
    for action in ("check", "write"):
        p = actions.add_parser(action)
        p.add_argument("project", nargs="?", default=".", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.action == "check":
            manifest = check(args.project)
            print(f"OK: {manifest.name} {manifest.version} (core_api {manifest.core_api})")
        else:
            print(f"wrote {write(args.project)}")
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
