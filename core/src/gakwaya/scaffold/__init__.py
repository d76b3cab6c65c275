"""A new plugin project from templates: what ``gakwaya plugin new NAME`` writes.

The templates (``templates/*.tmpl``, package data) are :class:`string.Template`
text. The only values substituted are derived from NAME after it matched
:data:`NAME_RULE`, so nothing a user types reaches a path, a file's code or a
command beyond letters, digits and hyphens; nothing is executed. The packaged
manifest is not a template: it is :func:`gakwaya_sdk.manifest.manifest_toml` of the
rendered pyproject, so ``python -m gakwaya_sdk manifest check`` passes on a fresh
project by construction.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from packaging.version import Version

import gakwaya_sdk
from gakwaya_sdk.manifest import CORE_API_VERSION, MANIFEST_FILE, load_manifest, manifest_toml

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
_NAME = re.compile(NAME_PATTERN[1:-1])
#: Names whose package or distribution would be one of Gakwaya's own
#: (``gakwaya_sdk``, ``gakwaya-marketplace``…) or that the kernel's built-in plugins use.
RESERVED = frozenset({"core", "sdk", "marketplace", "workspace", "webui"})
NAME_RULE = (
    f"must match {NAME_PATTERN}: 3 to 40 characters, lower-case letters, digits and "
    "'-', starting with a letter and not ending with '-'; and not one of "
    + ", ".join(sorted(RESERVED))
    + " (Gakwaya's own packages)"
)


class ScaffoldError(Exception):
    """The project cannot be created; the message says why and what to do."""


@dataclass(frozen=True)
class Names:
    """Every spelling of the plugin's name the templates need."""

    #: NAME as typed: the project's directory, the URL segment of its routes
    #: (``hello-world``).
    name: str
    #: For Python identifiers and permission names (``hello_world``).
    pkg: str
    #: The import package (``gakwaya_hello_world``).
    package: str
    #: The plugin's one name (``gakwaya-hello-world``): distribution, entry point,
    #: manifest, settings key. Operators install, enable, disable and configure it by
    #: this name, so it is never two.
    dist: str

    @classmethod
    def of(cls, name: str) -> Names:
        check_name(name)
        pkg = name.replace("-", "_")
        return cls(name=name, pkg=pkg, package=f"gakwaya_{pkg}", dist=f"gakwaya-{name}")


def check_name(name: str) -> str:
    """``name`` when it may name a plugin project; else :class:`ScaffoldError` with the rule."""
    # fullmatch, not match: "$" would accept a trailing newline.
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED:
        raise ScaffoldError(f"NAME {name!r} {NAME_RULE}")
    if name == "gakwaya" or name.startswith("gakwaya-"):
        raise ScaffoldError(
            f"NAME {name!r}: leave out the 'gakwaya' prefix, the package (gakwaya_NAME) "
            f"and the distribution (gakwaya-NAME) get it; NAME {NAME_RULE}"
        )
    return name


def core_api_range(version: str = CORE_API_VERSION) -> str:
    """The ``core_api`` a new plugin should state: this API version up to the next
    one that may break it (the next minor while at 0.x, else the next major)."""
    release = Version(version).release
    major, minor = release[0], release[1] if len(release) > 1 else 0
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={major}.{minor},<{upper}"


def _sdk_spec() -> str:
    release = Version(gakwaya_sdk.__version__).release
    return ">=" + ".".join(str(part) for part in release[:2])


def _template(name: str) -> Template:
    text = resources.files(__name__).joinpath("templates", name).read_text(encoding="utf-8")
    return Template(text)


def render(name: str) -> dict[str, str]:
    """The new project's files: relative path → text."""
    names = Names.of(name)
    values = {
        "name": names.name,
        "pkg": names.pkg,
        "package": names.package,
        "dist": names.dist,
        "title": names.name.replace("-", " ").title(),
        "wheel_stem": names.package,
        "core_api": core_api_range(),
        "sdk_spec": _sdk_spec(),
    }
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        ".gitignore": "gitignore.tmpl",
        f"src/{names.package}/__init__.py": "package_init.py.tmpl",
        f"src/{names.package}/plugin.py": "plugin.py.tmpl",
        "tests/test_plugin.py": "test_plugin.py.tmpl",
    }
    out = {path: _template(tmpl).substitute(values) for path, tmpl in files.items()}
    manifest = load_manifest(out["pyproject.toml"])
    out[f"src/{names.package}/{MANIFEST_FILE}"] = manifest_toml(manifest)
    return out


def create(name: str, directory: Path | str = ".") -> Path:
    """Write the project into ``directory/name``, which must not exist yet; return it.

    On a failure half-way, what was written is removed again."""
    files = render(name)
    parent = Path(directory)
    if not parent.is_dir():
        raise ScaffoldError(f"--directory {str(parent)!r} is not an existing directory")
    target = parent / name
    try:
        # Exclusive: fails on anything already there, a dangling symlink included.
        os.mkdir(target)
    except FileExistsError:
        raise ScaffoldError(
            f"{target} already exists; choose another NAME or --directory"
        ) from None
    except OSError as exc:
        raise ScaffoldError(f"cannot create {target}: {exc.strerror}") from None
    try:
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise ScaffoldError(f"cannot write {target}: {exc.strerror}") from None
    return target
