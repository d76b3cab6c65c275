"""``python -m gakwaya_webui.assets build``: the npm assets, installed from the lockfile.

Third-party front-end files (htmx and its SSE extension, Pico CSS, uPlot) come from
the npm registry at the exact versions and hashes of ``webui/package-lock.json``
(``npm ci``), never copied into the repository by hand. Only the files the pages load
are copied into ``gakwaya_webui/static/vendor/`` (git-ignored), with their licences.

Standard library only: the wheel's build hook (``webui/hatch_build.py``) loads this
file by path in an isolated build environment.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
VENDOR_DIR = PACKAGE_DIR / "static" / "vendor"
#: ``webui/``, where package.json and package-lock.json live (in a source checkout).
PROJECT_DIR = PACKAGE_DIR.parent.parent

#: node_modules path -> name under static/vendor/.
FILES: dict[str, str] = {
    "htmx.org/dist/htmx.min.js": "htmx.min.js",
    "htmx.org/LICENSE": "htmx.LICENSE.txt",
    "@picocss/pico/css/pico.min.css": "pico.min.css",
    "@picocss/pico/LICENSE.md": "pico.LICENSE.txt",
    "uplot/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
    "uplot/dist/uPlot.min.css": "uPlot.min.css",
    "uplot/LICENSE": "uplot.LICENSE.txt",
}


#: In vendor/: the sha256 of the package-lock.json the files were built from.
STAMP = ".package-lock.sha256"


class AssetError(Exception):
    """The assets cannot be built; the message says what to do."""


def _lock_digest(project: Path) -> str:
    return hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()


def missing(vendor: Path = VENDOR_DIR, project: Path = PROJECT_DIR) -> list[str]:
    """What is not built, or built from another lockfile (the pages still render,
    unstyled and without htmx, when files are missing)."""
    absent = [name for name in FILES.values() if not (vendor / name).is_file()]
    lock = project / "package-lock.json"
    if lock.is_file():
        stamp = vendor / STAMP
        if not stamp.is_file() or stamp.read_text().strip() != _lock_digest(project):
            absent.append(f"{STAMP} (built from another package-lock.json)")
    return absent


def build(project: Path = PROJECT_DIR, vendor: Path = VENDOR_DIR, *, npm: str = "npm") -> None:
    """Run ``npm ci`` in ``project`` and copy the listed files into ``vendor``."""
    if not (project / "package-lock.json").is_file():
        raise AssetError(f"{project}/package-lock.json is missing: build from a source checkout")
    exe = shutil.which(npm)
    if exe is None:
        raise AssetError(f"{npm!r} is not on PATH (Debian: apt-get install npm)")
    done = subprocess.run(
        [exe, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=project,
        check=False,
    )
    if done.returncode != 0:
        raise AssetError(f"npm ci failed in {project} (exit {done.returncode})")
    modules = project / "node_modules"
    vendor.mkdir(parents=True, exist_ok=True)
    # What an earlier lockfile brought and this one no longer lists would otherwise be
    # served and packed into the wheel.
    for stale in vendor.iterdir():
        if stale.is_file() and stale.name not in {*FILES.values(), STAMP}:
            stale.unlink()
    for source, name in FILES.items():
        path = modules / source
        if not path.is_file():
            raise AssetError(f"{path} is missing after npm ci: update FILES in {__file__}")
        shutil.copyfile(path, vendor / name)
    (vendor / STAMP).write_text(_lock_digest(project) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gakwaya_webui.assets")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="npm ci, then copy the pages' files into static/vendor/")
    sub.add_parser("check", help="exit 1 when a file is missing or the lockfile changed")
    args = parser.parse_args(argv)
    if args.command == "check":
        absent = missing()
        for name in absent:
            print(f"missing: {VENDOR_DIR / name}", file=sys.stderr)
        return 1 if absent else 0
    try:
        build()
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"assets built into {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
