"""Real plugin wheels, signed indexes, a loopback index server and throwaway Python
environments, for the marketplace tests (and anyone who needs a plugin installed the
way an operator would install it).

- :func:`plugin_project` / :func:`build_wheel` / :func:`build_plugin_wheel`: a tiny
  plugin distribution (entry point in ``gakwaya.plugins``, ``<package>/gakwaya-plugin.toml``
  manifest, both named like the distribution; depends on ``gakwaya-sdk``) built into a
  real wheel by ``uv build``.
- :func:`new_key` / :func:`publish`: copy wheels into a directory, build the index for
  them and sign it (``index.json``), optionally editing the index before signing.
- :class:`IndexServer`: ``http.server`` on 127.0.0.1 in a thread, serving a directory.
- :func:`make_venv`: ``uv venv`` seeded with the workspace's ``gakwaya-sdk`` (editable),
  so a plugin's only dependency is already satisfied.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from uv import find_uv_bin

from gakwaya_marketplace import (
    MANIFEST_FILE,
    Index,
    build_index,
    encode_index,
    generate_key,
    sign,
    signed_document,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = ROOT / "sdk"
UV = str(find_uv_bin())
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

_INIT = '''\
"""{dist} {version}: a plugin built by the marketplace tests."""

from gakwaya_sdk import hookimpl

VERSION = "{version}"


@hookimpl
def register_permissions():
    return []
'''


def plugin_project(
    root: Path,
    *,
    dist: str = "gakwaya-greeter",
    version: str = "1.0.0",
    core_api: str = ">=0.1,<0.2",
    dependencies: Sequence[str] = ("gakwaya-sdk",),
    init: str | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """A plugin project in ``root``: plugin and distribution ``dist`` (one name, as the
    SDK's manifest check and the marketplace require), package ``dist`` with dashes made
    underscores, capability ``demo:<dist without gakwaya->``."""
    package = dist.replace("-", "_")
    short = dist.removeprefix("gakwaya-")
    root.mkdir(parents=True, exist_ok=True)
    deps = ", ".join(json.dumps(d) for d in dependencies)
    (root / "pyproject.toml").write_text(
        f"""\
[project]
name = "{dist}"
version = "{version}"
description = "The {short} test plugin"
requires-python = ">=3.11"
dependencies = [{deps}]

[project.urls]
Homepage = "https://example.org/{short}"

[project.entry-points."gakwaya.plugins"]
{dist} = "{package}"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
"""
    )
    source = root / "src" / package
    source.mkdir(parents=True, exist_ok=True)
    (source / "__init__.py").write_text(
        init if init is not None else _INIT.format(dist=dist, version=version)
    )
    (source / MANIFEST_FILE).write_text(
        f'name = "{dist}"\nversion = "{version}"\ncore_api = "{core_api}"\n'
        f'provides = ["demo:{short}"]\n'
    )
    for relative, text in (extra_files or {}).items():
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def build_wheel(project: Path, out: Path) -> Path:
    """``uv build --wheel``: from uv's cache when hatchling is there (no network), else
    fetching it. Returns the one new wheel."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    command = [UV, "build", "--wheel", "--out-dir", str(out), "--quiet", str(project)]
    offline = subprocess.run([*command, "--offline"], capture_output=True, timeout=240, check=False)
    if offline.returncode != 0:
        subprocess.run(command, check=True, capture_output=True, timeout=240)
    made = sorted(set(out.glob("*.whl")) - before)
    assert len(made) == 1, made
    return made[0]


def build_plugin_wheel(workdir: Path, out: Path, **project: Any) -> Path:
    """:func:`plugin_project` (in a fresh subdirectory of ``workdir``) then
    :func:`build_wheel` into ``out``."""
    dist = project.get("dist", "gakwaya-greeter")
    version = project.get("version", "1.0.0")
    src = workdir / f"{dist}-{version}-{len(list(workdir.glob('*')))}"
    return build_wheel(plugin_project(src, **project), out)


# Signed indexes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    pem: bytes
    public: str
    key_id: str

    @property
    def trusted(self) -> str:
        """The ``KEYID=BASE64PUBLIC`` form of the plugin_trusted_keys setting."""
        return f"{self.key_id}={self.public}"

    @property
    def as_dict(self) -> dict[str, str]:
        return {self.key_id: self.public}


def new_key() -> Key:
    pem, public, key_id = generate_key()
    return Key(pem, public, key_id)


def sign_index(index: Index, key: Key) -> bytes:
    data = encode_index(index)
    return signed_document(data, [sign(data, key.pem)])


def publish(
    directory: Path,
    wheels: Sequence[Path],
    base_url: str,
    key: Key,
    *,
    edit: Callable[[Index], None] | None = None,
) -> Path:
    """Copy ``wheels`` into ``directory``, build their index with wheel URLs under
    ``base_url``, let ``edit`` change it, sign it and write ``directory/index.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    copies = []
    for wheel in wheels:
        target = directory / wheel.name
        shutil.copy(wheel, target)
        copies.append(target)
    index = build_index(copies, base_url, None, now=NOW)
    if edit is not None:
        edit(index)
    path = directory / "index.json"
    path.write_bytes(sign_index(index, key))
    return path


# Serving -----------------------------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class IndexServer:
    """A real HTTP server on loopback serving ``root`` (a thread; stop() to end it)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> IndexServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@contextmanager
def serve(root: Path) -> Iterator[IndexServer]:
    server = IndexServer(root).start()
    try:
        yield server
    finally:
        server.stop()


# Throwaway environments ---------------------------------------------------------------------


def make_venv(path: Path, editable: Sequence[Path] = (SDK_DIR,)) -> Path:
    """A new virtual environment with the workspace's gakwaya-sdk installed (editable;
    pass ``editable=(SDK_DIR, ROOT / "marketplace", ROOT / "core")`` for a whole panel);
    returns its python."""
    subprocess.run(
        [UV, "venv", "--quiet", "--python", sys.executable, str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    python = path / "bin" / "python"
    command = [UV, "pip", "install", "--quiet", "--python", str(python)]
    for project in editable:
        command += ["-e", str(project)]
    offline = subprocess.run([*command, "--offline"], capture_output=True, timeout=240, check=False)
    if offline.returncode != 0:
        subprocess.run(command, check=True, capture_output=True, timeout=240)
    return python


def freeze(python: Path | str) -> str:
    """What the environment holds (``uv pip freeze``), to compare before and after."""
    result = subprocess.run(
        [UV, "pip", "freeze", "--python", str(python)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout


def run_python(python: Path | str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in the environment's own python (isolated from this process)."""
    return subprocess.run(
        [str(python), "-I", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def imported_version(python: Path | str, package: str) -> str | None:
    """``package.VERSION`` as the environment imports it, or None when it cannot."""
    result = run_python(python, f"import {package}; print({package}.VERSION)")
    return result.stdout.strip() if result.returncode == 0 else None


def uv_uninstall(python: Path | str, *names: str) -> None:
    subprocess.run(
        [UV, "pip", "uninstall", "--quiet", "--python", str(python), *names],
        capture_output=True,
        timeout=120,
        check=False,
    )


def uv_install_wheel(python: Path | str, wheel: Path) -> None:
    """Install a wheel by hand, outside the marketplace (no dependency resolution)."""
    subprocess.run(
        [UV, "pip", "install", "--quiet", "--no-deps", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )


# The wheels of tests/plugins/test_install*.py -------------------------------------------------


@dataclass(frozen=True)
class DemoWheels:
    """``gakwaya-greeter`` at 1.0.0, 1.1.0 (both for this core) and 2.0.0 (core API >=9);
    ``gakwaya-other`` 1.0.0; ``gakwaya-needy`` 1.0.0, which needs a distribution no
    environment has; ``greeter_1_0_rebuilt``: 1.0.0 again with other bytes."""

    greeter: dict[str, Path]
    other: Path
    needy: Path
    greeter_1_0_rebuilt: Path


_DEMO: list[DemoWheels] = []


def demo_wheels(workdir: Path) -> DemoWheels:
    """Built once per test session (the first caller's ``workdir`` holds them)."""
    if _DEMO:
        return _DEMO[0]
    out = workdir / "dist"
    greeter = {
        version: build_plugin_wheel(workdir, out, version=version, core_api=core_api)
        for version, core_api in (("1.0.0", ">=0.1,<0.2"), ("1.1.0", ">=0.1"), ("2.0.0", ">=9"))
    }
    other = build_plugin_wheel(workdir, out, dist="gakwaya-other")
    needy = build_plugin_wheel(
        workdir,
        out,
        dist="gakwaya-needy",
        dependencies=["gakwaya-sdk", "definitely-not-installed-dist>=1"],
    )
    rebuilt = build_plugin_wheel(
        workdir, workdir / "rebuilt", extra_files={"extra.py": "CHANGED = True\n"}
    )
    _DEMO.append(DemoWheels(greeter=greeter, other=other, needy=needy, greeter_1_0_rebuilt=rebuilt))
    return _DEMO[0]


@dataclass
class Market:
    """One test's published index: a directory of its own under the server's root."""

    server: IndexServer
    key: Key
    wheels: DemoWheels
    directory: Path
    name: str

    @classmethod
    def new(cls, server: IndexServer, key: Key, wheels: DemoWheels) -> Market:
        """A fresh directory with every demo wheel published in it."""
        name = uuid.uuid4().hex[:12]
        market = cls(server, key, wheels, server.root / name, name)
        market.publish()
        return market

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/{self.name}/"

    @property
    def url(self) -> str:
        return self.base_url + "index.json"

    def publish(self, *wheels: Path, edit: Callable[[Index], None] | None = None) -> None:
        """(Re)publish ``wheels`` (default: all the demo wheels) and sign the index."""
        chosen = wheels or (*self.wheels.greeter.values(), self.wheels.other, self.wheels.needy)
        publish(self.directory, chosen, self.base_url, self.key, edit=edit)

    def index(self) -> Index:
        return verify((self.directory / "index.json").read_bytes(), self.key.as_dict)

    def sha(self, dist: str, version: str) -> str:
        plugin = self.index().plugins[dist]
        return next(r.sha256 for r in plugin.versions if r.version == version)
