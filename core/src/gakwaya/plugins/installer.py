"""Installing plugins from the signed marketplace index.

The one path a plugin takes into an installation: fetch the index (HTTP(S) or a
file), verify its signature against the configured trusted keys, choose a release
this core can load, download its wheel (only a wheel: a source build would run code
from the index on this host), check size and sha256 against the signed entry and
read the wheel's own metadata and manifest, check its dependencies are already
there, then let ``uv pip install`` put it in place with the hash required and
nothing else allowed in (``--no-deps --no-index --require-hashes --only-binary``).
Only then are ``plugins.lock`` and the record of what the marketplace installed
(``<data_dir>/plugins/installed.json``) written.

Every refusal happens before the environment or the lock is touched. ``remove`` and
``sync`` uninstall only what that record says the marketplace installed into this
very Python, so a first-party or hand-installed package is never removed.

Nothing here imports Litestar: the CLI and the API call the same functions. A change
takes effect when the processes restart (the plugin set is fixed for a process's life).
"""

from __future__ import annotations

import email.parser
import fcntl
import http.client
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener, url2pathname

import msgspec
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

import gakwaya
from gakwaya.db import Database
from gakwaya.db.base import utcnow
from gakwaya.db.models import PluginState
from gakwaya.errors import Conflict, FieldError, GakwayaError, NotFound
from gakwaya.plugins.lockfile import (
    Lock,
    LockEntry,
    LockError,
    check_writable,
    read_lock,
    write_lock,
)
from gakwaya.plugins.sources import check_index, check_name, check_version, parse_trusted_keys
from gakwaya.settings import Settings
from gakwaya_marketplace import (
    BadSignature,
    BlockEntry,
    Index,
    IntegrityError,
    MalformedDocument,
    MarketplaceError,
    NoInstallableRelease,
    Plugin,
    Release,
    SelectionError,
    UnknownKey,
    WheelInfo,
    check_wheel,
    check_wheel_matches,
    pick_release,
    read_wheel,
    skip_reason,
    verify,
    wheel_filename,
)
from gakwaya_sdk.manifest import CORE_API_VERSION, ManifestError, manifest_from_dict

log = logging.getLogger("gakwaya.plugins.installer")

RESTART = "restart gakwaya (serve and workers) to load it"
MAX_INDEX_BYTES = 32 * 1024 * 1024
MAX_WHEEL_BYTES = 256 * 1024 * 1024
TIMEOUT_SECONDS = 30.0
UV_TIMEOUT_SECONDS = 600
NO_TRUSTED_KEY = (
    "no trusted index key is configured, so no index can be verified: add the index "
    "publisher's key to plugin_trusted_keys (GAKWAYA_PLUGIN_TRUSTED_KEYS=KEYID=BASE64PUBLIC, "
    "as printed by 'python -m gakwaya_marketplace keygen')"
)
NO_INDEX = (
    "no plugin index is configured: set plugin_index_url (GAKWAYA_PLUGIN_INDEX_URL) or pass --index"
)


# Errors ------------------------------------------------------------------------------


class Refused(Conflict):
    """The marketplace refuses the operation; nothing was changed."""

    title = "Refused"


class IndexUnreachable(GakwayaError):
    """The index or a wheel could not be fetched."""

    status_code = 502
    title = "Bad gateway"


class InstallFailed(Conflict):
    """uv (or the target Python) failed; the message carries its last words."""

    title = "Install failed"


def _field(name: str, check: Any, value: str) -> str:
    try:
        return str(check(value))
    except ValueError as exc:
        raise FieldError(name, str(exc)) from None


def parse_requirement(spec: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME==VERSION`` (the CLI's form), each part checked."""
    name, sep, version = spec.partition("==")
    if not sep:
        if any(op in spec for op in ("<", ">", "=", "~", "!", "@", ",")):
            raise FieldError("name", "give NAME or NAME==VERSION (no other specifier)")
        return _field("name", check_name, spec), None
    return _field("name", check_name, name), _field("version", check_version, version)


# Results ------------------------------------------------------------------------------


class Change(msgspec.Struct, kw_only=True):
    #: Distribution name, as the index and plugins.lock list it.
    name: str
    #: installed, upgraded, downgraded, reinstalled, removed or unchanged.
    action: str
    version: str = ""
    previous: str = ""
    #: The plugin's name as the host spells it (its manifest's), as ``gakwaya plugins
    #: list`` shows it: ``name`` once PEP 503-normalised (the marketplace refuses a
    #: wheel whose manifest names another plugin).
    plugin: str = ""
    enabled: bool = True
    note: str = ""

    def line(self) -> str:
        if self.action in ("upgraded", "downgraded"):
            text = f"{self.action} {self.name} {self.previous} -> {self.version}"
        elif self.action == "removed":
            text = f"removed {self.name} {self.previous}".rstrip()
        else:
            text = f"{self.action} {self.name} {self.version}".rstrip()
        return f"{text} ({self.note})" if self.note else text


class Outcome(msgspec.Struct, kw_only=True):
    changes: list[Change]
    #: The plugin set is fixed for a process's life: restart serve and workers to apply.
    restart_required: bool
    detail: str


class VersionInfo(msgspec.Struct, kw_only=True):
    version: str
    core_api: str
    published_at: datetime
    yanked: bool
    installable: bool
    #: Why it cannot be installed here (empty when it can).
    reason: str = ""


class PluginSummary(msgspec.Struct, kw_only=True):
    name: str
    plugin: str
    summary: str
    homepage: str
    #: The newest release this panel would install, or null.
    latest: str | None
    #: The version plugins.lock lists, or null.
    installed: str | None
    provides: list[str]
    reason: str = ""


class SearchResult(msgspec.Struct, kw_only=True):
    index: str
    items: list[PluginSummary]


class PluginInfo(msgspec.Struct, kw_only=True):
    name: str
    plugin: str
    summary: str
    homepage: str
    index: str
    latest: str | None
    installed: str | None
    versions: list[VersionInfo]
    #: The manifest of the latest installable release (else of the newest one).
    manifest: dict[str, Any]


# The target environment -----------------------------------------------------------------

#: Run by the target Python (standard library only): its distributions and the values
#: PEP 508 markers are evaluated against (as ``packaging.markers.default_environment``).
_PROBE = r"""
import json, os, platform, sys
from importlib import metadata

def _full(info):
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version

dists = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if name and name not in dists:
        dists[name] = dist.version
markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": _full(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
json.dump({"distributions": dists, "markers": markers, "prefix": sys.prefix}, sys.stdout)
"""


@dataclass(frozen=True)
class Environment:
    #: Normalised distribution name → version.
    distributions: dict[str, str]
    markers: dict[str, str]
    prefix: str


def _subprocess_env() -> dict[str, str]:
    """The caller's environment without what would steer uv or Python elsewhere
    (another index, constraints, a different interpreter or site)."""
    dropped = ("UV_", "PIP_", "PYTHON", "VIRTUAL_ENV", "CONDA_")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def _last_words(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "\u00d7", "caused by"))]
    chosen = errors[-1] if errors else (lines[-1] if lines else "no output")
    return chosen[:500]


def _wheel_requirements(path: Path) -> tuple[list[str], str]:
    """``Requires-Dist`` lines and ``Requires-Python`` of a wheel (read_wheel checked it)."""
    with zipfile.ZipFile(path) as archive:
        member = next(
            n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        )
        metadata = email.parser.BytesParser().parsebytes(archive.read(member))
    requires = [str(r) for r in metadata.get_all("Requires-Dist") or []]
    return requires, str(metadata.get("Requires-Python") or "").strip()


# Fetching -----------------------------------------------------------------------------------


class _Redirects(HTTPRedirectHandler):
    """Follow redirects only to http(s), and never from https down to http."""

    def redirect_request(
        self,
        req: Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> Request | None:
        old, new = urlsplit(req.full_url).scheme, urlsplit(newurl).scheme
        if new not in ("http", "https") or (old == "https" and new != "https"):
            raise HTTPError(newurl, code, f"refused redirect to {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _file_path(url: str) -> Path:
    return Path(url2pathname(unquote(urlsplit(url).path)))


def fetch(url: str, limit: int, what: str, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """At most ``limit + 1`` bytes of ``url`` (http, https or file); the caller decides
    what more than ``limit`` means. :class:`IndexUnreachable` when it cannot be read."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        path = _file_path(url)
        try:
            with path.open("rb") as fh:
                return fh.read(limit + 1)
        except OSError as exc:
            raise IndexUnreachable(f"cannot read {what} at {url}: {exc.strerror}") from None
    if scheme not in ("http", "https"):
        raise Refused(f"{what}: {url!r} is not an http(s) or file URL")
    opener = build_opener(_Redirects)
    request = Request(  # noqa: S310 - the scheme is checked just above
        url, headers={"User-Agent": f"gakwaya/{gakwaya.__version__}"}
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            data: bytes = response.read(limit + 1)
            return data
    except HTTPError as exc:
        raise IndexUnreachable(f"cannot fetch {what} from {url}: HTTP {exc.code}") from None
    except URLError as exc:
        raise IndexUnreachable(f"cannot fetch {what} from {url}: {exc.reason}") from None
    except TimeoutError:
        raise IndexUnreachable(
            f"cannot fetch {what} from {url}: no answer within {timeout:g} s"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise IndexUnreachable(f"cannot fetch {what} from {url}: {exc!r}") from None
    except ValueError as exc:  # e.g. a URL with characters http.client refuses
        raise Refused(f"{what}: {url!r} is not a usable URL: {exc}") from None


# The record of what the marketplace installed ------------------------------------------------


class InstalledPlugin(msgspec.Struct, kw_only=True):
    version: str
    sha256: str
    #: The manifest's name as spelled: what the host keys its enable/disable state by.
    #: The distribution's name once PEP 503-normalised, perhaps spelled otherwise.
    plugin: str
    index: str


class _Record(msgspec.Struct, kw_only=True):
    version: int = 1
    #: Target Python path → distribution name → what was installed there.
    environments: dict[str, dict[str, InstalledPlugin]] = {}


# The service -----------------------------------------------------------------------------------


@dataclass
class Installer:
    """One operation's view of the configuration; cheap to build per request."""

    data_dir: Path
    lock_path: Path
    #: Default index location (settings); "" when none is configured.
    index_url: str
    trusted_keys: dict[str, str]
    blocklist: list[BlockEntry]
    #: The Python whose environment plugins are installed into.
    python: str = field(default_factory=lambda: sys.executable)
    core_api: str = CORE_API_VERSION
    timeout: float = TIMEOUT_SECONDS
    _indexes: dict[str, Index] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        blocklist: Sequence[Any] | None = None,
        python: str | None = None,
    ) -> Installer:
        """``blocklist``: the host's loaded entries (``BlockedVersion``); default: read
        the ``plugin_blocklist`` file (a bad file raises its settings error)."""
        if blocklist is None:
            from gakwaya.plugins.host import load_blocklist

            path = settings.plugin_blocklist
            blocklist = load_blocklist(path) if path else []
        entries = [
            BlockEntry(
                name=b.name,
                lowest_good_version=b.lowest_good_version,
                reason=b.reason or "no reason given",
            )
            for b in blocklist
        ]
        return cls(
            data_dir=settings.data_path,
            lock_path=Path(settings.plugins_lock).expanduser().absolute(),
            index_url=check_index(settings.plugin_index_url) if settings.plugin_index_url else "",
            trusted_keys=parse_trusted_keys(settings.plugin_trusted_keys),
            blocklist=entries,
            python=python or settings.plugin_python or sys.executable,
        )

    # Paths -------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.data_dir / "plugins"

    @property
    def wheel_dir(self) -> Path:
        return self.root / "wheels"

    @property
    def record_path(self) -> Path:
        return self.root / "installed.json"

    @property
    def target(self) -> str:
        """The target interpreter as recorded: absolute, symlinks kept (a venv's python
        is a symlink to the base interpreter, and must stay the venv's)."""
        return os.path.abspath(self.python)

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One mutating operation at a time per installation (API threads, CLI runs)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "operation.lock").open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(
                    "another plugin operation is running; try again when it has finished"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # Reading the index ---------------------------------------------------------------

    def _location(self, override: str | None) -> str:
        if override:
            return _field("index", check_index, override)
        if not self.index_url:
            raise Refused(NO_INDEX)
        return self.index_url

    def load_index(self, url: str) -> Index:
        """The verified index at ``url`` (fetched once per operation)."""
        if url in self._indexes:
            return self._indexes[url]
        if not self.trusted_keys:
            raise Refused(NO_TRUSTED_KEY)
        data = fetch(url, MAX_INDEX_BYTES, "the plugin index", self.timeout)
        if len(data) > MAX_INDEX_BYTES:
            raise Refused(f"the plugin index at {url} is larger than {MAX_INDEX_BYTES} bytes")
        try:
            index = verify(data, self.trusted_keys)
        except BadSignature as exc:
            raise Refused(f"the plugin index at {url} is refused: bad signature: {exc}") from None
        except UnknownKey as exc:
            raise Refused(
                f"the plugin index at {url} is refused: {exc}; trust its publisher's key "
                "in plugin_trusted_keys if you mean to use it"
            ) from None
        except MalformedDocument as exc:
            raise Refused(f"the plugin index at {url} is refused: {exc}") from None
        self._indexes[url] = index
        return index

    def _plugin(self, index: Index, name: str, url: str) -> Plugin:
        plugin = index.plugins.get(canonicalize_name(name))
        if plugin is None:
            raise NotFound(f"the index at {url} has no plugin named {name!r}")
        return plugin

    def _choose(self, key: str, index: Index, version: str | None) -> Release:
        plugin = index.plugins[key]
        if version is None:
            try:
                return pick_release(index, key, self.core_api, self.blocklist)
            except NoInstallableRelease as exc:
                raise Refused(str(exc)) from None
            except SelectionError as exc:
                raise Refused(str(exc)) from None
        wanted = Version(version)
        release = next((r for r in plugin.versions if _version_equal(r.version, wanted)), None)
        if release is None:
            known = ", ".join(r.version for r in plugin.versions) or "none"
            raise NotFound(f"{key} has no version {version} in the index (it has: {known})")
        # An exact pin may name a yanked release (as pip allows); never a blocked or
        # incompatible one.
        reason = skip_reason(
            key,
            msgspec.structs.replace(release, yanked=False),
            Version(self.core_api),
            self.blocklist,
        )
        if reason is not None:
            raise Refused(f"{key} {release.version} cannot be installed: {reason}")
        return release

    # Wheels -------------------------------------------------------------------------------

    def _wheel(self, key: str, release: Release, index_url: str) -> tuple[Path, WheelInfo]:
        """Download (or reuse from the cache) and check the release's wheel."""
        try:
            filename = wheel_filename(key, release)
        except MarketplaceError as exc:
            raise Refused(str(exc)) from None
        url = urljoin(index_url, release.wheel_url)
        index_scheme, wheel_scheme = urlsplit(index_url).scheme, urlsplit(url).scheme.lower()
        allowed = ["http", "https"]
        if index_scheme == "file":
            allowed.append("file")
        if wheel_scheme not in allowed:
            raise Refused(
                f"{key} {release.version}: wheel URL {url!r} is not allowed for an index at "
                f"{index_url} (only {', '.join(allowed)})"
            )
        if not 0 < release.size <= MAX_WHEEL_BYTES:
            raise Refused(
                f"{key} {release.version}: the index gives a wheel size of {release.size} "
                f"bytes (at most {MAX_WHEEL_BYTES})"
            )
        self.wheel_dir.mkdir(parents=True, exist_ok=True)
        directory = self.wheel_dir.resolve()
        target = directory / filename
        if target.parent != directory:  # wheel_filename allows no separator; belt and braces
            raise Refused(f"{key}: wheel file name {filename!r} leaves the cache directory")
        data: bytes | None = None
        if target.is_file():
            cached = target.read_bytes()
            try:
                check_wheel(release, cached)
                data = cached
            except IntegrityError:
                data = None  # a stale or damaged copy: fetch it again
        if data is None:
            data = fetch(url, release.size, f"the wheel {filename}", self.timeout)
            try:
                check_wheel(release, data)
            except IntegrityError as exc:
                raise Refused(f"{key} {release.version} is refused: {exc}") from None
            fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=directory)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp_name, target)
        try:
            info = read_wheel(target)
            check_wheel_matches(key, release, info)
            manifest = manifest_from_dict(info.manifest)
        except (MarketplaceError, ManifestError) as exc:
            raise Refused(f"{key} {release.version} is refused: {exc}") from None
        if not manifest.compatible_with(self.core_api):
            raise Refused(
                f"{key} {release.version} is refused: its manifest needs core API "
                f"{manifest.core_api}, this panel has {self.core_api}"
            )
        return target, info

    # The target environment ----------------------------------------------------------------

    def _run(self, argv: list[str], what: str, timeout: int) -> subprocess.CompletedProcess[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_subprocess_env(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise InstallFailed(f"{what}: {argv[0]} not found") from None
        except PermissionError:
            raise InstallFailed(f"{what}: {argv[0]} cannot be run") from None
        except subprocess.TimeoutExpired:
            raise InstallFailed(f"{what}: gave no answer within {timeout} s") from None

    def probe(self) -> Environment:
        """What the target Python has installed, and its marker values."""
        python = self.target
        if not os.path.isfile(python) or not os.access(python, os.X_OK):
            raise Refused(
                f"the target Python {python} does not exist or cannot be run (see plugin_python)"
            )
        result = self._run([python, "-I", "-c", _PROBE], f"the target Python {python}", 120)
        if result.returncode != 0:
            raise InstallFailed(f"the target Python {python} failed: {_last_words(result.stderr)}")
        try:
            raw = json.loads(result.stdout)
            distributions = {
                str(canonicalize_name(name)): str(version)
                for name, version in raw["distributions"].items()
            }
            return Environment(distributions, dict(raw["markers"]), str(raw["prefix"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InstallFailed(f"the target Python {python} gave an unreadable answer") from None

    def _check_dependencies(
        self, key: str, wheel: Path, env: Environment, planned: dict[str, str]
    ) -> None:
        """Every dependency must already be there: the marketplace installs the plugin's
        own hashed wheel and nothing unhashed beside it."""
        requires, requires_python = _wheel_requirements(wheel)
        python_version = env.markers.get("python_full_version", "")
        if requires_python:
            try:
                ok = SpecifierSet(requires_python).contains(python_version, prereleases=True)
            except InvalidSpecifier:
                ok = False
            if not ok:
                raise Refused(
                    f"{key} needs Python {requires_python}; {self.target} is {python_version}"
                )
        available = {**env.distributions, **planned}
        missing: list[str] = []
        for line in requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                raise Refused(f"{key} declares an unreadable dependency {line!r}") from None
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**env.markers, "extra": ""}
            ):
                continue
            dist = canonicalize_name(requirement.name)
            have = available.get(dist)
            if have is None:
                missing.append(f"{requirement} (not installed)")
            elif requirement.specifier and not requirement.specifier.contains(
                have, prereleases=True
            ):
                missing.append(f"{requirement} ({dist} {have} is installed)")
        if missing:
            raise Refused(
                f"{key} needs {'; '.join(missing)} in {self.target}: install what it needs "
                "first (the marketplace installs only plugin wheels with verified hashes, "
                "never unhashed dependencies)"
            )

    def _uv(self) -> str:
        from uv import find_uv_bin

        try:
            return str(find_uv_bin())
        except FileNotFoundError:
            raise InstallFailed("the uv binary (PyPI package 'uv') is not installed") from None

    def _install(self, wheels: list[tuple[str, Path, str]]) -> None:
        """``uv pip install`` of exactly these wheels, each pinned to its sha256."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="install-", dir=self.root) as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text(
                "".join(
                    f"{name} @ {path.resolve().as_uri()} --hash=sha256:{sha256}\n"
                    for name, path, sha256 in wheels
                )
            )
            argv = [
                self._uv(),
                "pip",
                "install",
                "--python",
                self.target,
                "--no-config",
                "--no-index",
                "--no-deps",
                "--require-hashes",
                "--only-binary",
                ":all:",
                "--no-cache",
                "--link-mode",
                "copy",
                "--quiet",
                "-r",
                str(requirements),
            ]
            result = self._run(argv, "uv pip install", UV_TIMEOUT_SECONDS)
        if result.returncode != 0:
            names = ", ".join(name for name, _, _ in wheels)
            raise InstallFailed(f"uv could not install {names}: {_last_words(result.stderr)}")

    def _uninstall(self, names: list[str]) -> None:
        argv = [
            self._uv(),
            "pip",
            "uninstall",
            "--python",
            self.target,
            "--no-config",
            "--quiet",
            *names,
        ]
        result = self._run(argv, "uv pip uninstall", UV_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise InstallFailed(
                f"uv could not uninstall {', '.join(names)}: {_last_words(result.stderr)}"
            )

    # Lock and record ---------------------------------------------------------------------------

    def read_lock(self) -> Lock:
        try:
            return read_lock(self.lock_path)
        except LockError as exc:
            raise Refused(str(exc)) from None

    def _write_lock(self, lock: Lock) -> None:
        try:
            write_lock(self.lock_path, lock)
        except LockError as exc:
            raise InstallFailed(str(exc)) from None

    def _check_lock_writable(self) -> None:
        try:
            check_writable(self.lock_path)
        except LockError as exc:
            raise Refused(str(exc)) from None

    def _read_record(self) -> _Record:
        try:
            return msgspec.json.decode(self.record_path.read_bytes(), type=_Record)
        except FileNotFoundError:
            return _Record()
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise Refused(f"{self.record_path} is unreadable: {exc}") from None

    def installed(self) -> dict[str, InstalledPlugin]:
        """What the marketplace installed into the target Python (distribution → entry)."""
        return dict(self._read_record().environments.get(self.target, {}))

    def _write_record(self, mine: dict[str, InstalledPlugin]) -> None:
        record = self._read_record()
        if mine:
            record.environments[self.target] = dict(sorted(mine.items()))
        else:
            record.environments.pop(self.target, None)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".installed-", dir=self.root)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n")
        os.replace(tmp_name, self.record_path)

    # Reading: search and info ---------------------------------------------------------------

    def _latest(self, index: Index, key: str) -> tuple[Release | None, str]:
        try:
            return pick_release(index, key, self.core_api, self.blocklist), ""
        except SelectionError as exc:
            return None, str(exc)

    def search(self, query: str = "", *, index: str | None = None) -> SearchResult:
        self._indexes.clear()
        if len(query) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in query):
            raise FieldError("q", "at most 200 printable characters")
        url = self._location(index)
        idx = self.load_index(url)
        lock = self.read_lock()
        wanted = query.strip().lower()
        items: list[PluginSummary] = []
        for key, plugin in sorted(idx.plugins.items()):
            newest = plugin.versions[0] if plugin.versions else None
            manifest = newest.manifest if newest else {}
            provides = [str(p) for p in manifest.get("provides", []) if isinstance(p, str)]
            haystack = " ".join(
                [key, plugin.summary, str(manifest.get("name", "")), *provides]
            ).lower()
            if wanted and wanted not in haystack:
                continue
            latest, reason = self._latest(idx, key)
            entry = lock.get(key)
            items.append(
                PluginSummary(
                    name=key,
                    plugin=str((latest.manifest if latest else manifest).get("name", "")),
                    summary=plugin.summary,
                    homepage=plugin.homepage,
                    latest=latest.version if latest else None,
                    installed=entry.version if entry else None,
                    provides=provides,
                    reason=reason,
                )
            )
        return SearchResult(index=url, items=items)

    def info(self, name: str, *, index: str | None = None) -> PluginInfo:
        self._indexes.clear()
        name = _field("name", check_name, name)
        url = self._location(index)
        idx = self.load_index(url)
        plugin = self._plugin(idx, name, url)
        key = canonicalize_name(name)
        api = Version(self.core_api)
        versions = []
        for release in plugin.versions:
            try:
                Version(release.version)
                reason = skip_reason(key, release, api, self.blocklist)
            except InvalidVersion:
                reason = "not a PEP 440 version"
            versions.append(
                VersionInfo(
                    version=release.version,
                    core_api=release.core_api,
                    published_at=release.published_at,
                    yanked=release.yanked,
                    installable=reason is None,
                    reason=reason or "",
                )
            )
        latest, _reason = self._latest(idx, key)
        shown = latest or (plugin.versions[0] if plugin.versions else None)
        entry = self.read_lock().get(key)
        return PluginInfo(
            name=key,
            plugin=str(shown.manifest.get("name", "")) if shown else "",
            summary=plugin.summary,
            homepage=plugin.homepage,
            index=url,
            latest=latest.version if latest else None,
            installed=entry.version if entry else None,
            versions=versions,
            manifest=dict(shown.manifest) if shown else {},
        )

    # Changing: install, upgrade, remove, sync -----------------------------------------------

    def install(
        self, name: str, version: str | None = None, *, index: str | None = None
    ) -> Outcome:
        """Install the newest compatible release of ``name`` (or exactly ``version``)."""
        self._indexes.clear()  # a fresh look at the index for every operation
        name = _field("name", check_name, name)
        if version is not None:
            version = _field("version", check_version, version)
        url = self._location(index)
        with self._operation():
            lock = self.read_lock()
            self._check_lock_writable()
            idx = self.load_index(url)
            self._plugin(idx, name, url)
            key = str(canonicalize_name(name))
            release = self._choose(key, idx, version)
            change = self._put(key, release, url, lock)
        return _outcome([change])

    def upgrade(self, name: str, *, index: str | None = None) -> Outcome:
        """Move an installed plugin to the newest compatible release."""
        self._indexes.clear()
        name = _field("name", check_name, name)
        key = str(canonicalize_name(name))
        with self._operation():
            lock = self.read_lock()
            entry = lock.get(key)
            if entry is None:
                raise NotFound(f"{key} is not in {self.lock_path}: install it first")
            self._check_lock_writable()
            url = self._location(index or entry.index)
            idx = self.load_index(url)
            self._plugin(idx, key, url)
            release = self._choose(key, idx, None)
            current = Version(entry.version)
            newest = Version(release.version)
            if newest == current and self._in_place(key, entry):
                return _outcome(
                    [
                        Change(
                            name=key,
                            action="unchanged",
                            version=entry.version,
                            plugin=self._plugin_name(key),
                            enabled=entry.enabled,
                            note="already the newest compatible release",
                        )
                    ]
                )
            if newest < current:
                raise Refused(
                    f"the newest installable release of {key} is {release.version}, older than "
                    f"the installed {entry.version}; to go back, install {key}=={release.version}"
                )
            change = self._put(key, release, url, lock)
        return _outcome([change])

    def remove(self, name: str) -> Outcome:
        """Uninstall a plugin the marketplace installed and drop it from the lock."""
        name = _field("name", check_name, name)
        key = str(canonicalize_name(name))
        with self._operation():
            lock = self.read_lock()
            mine = self.installed()
            entry = lock.get(key)
            if entry is None and key not in mine:
                raise NotFound(
                    f"{key} was not installed by the marketplace (not in {self.lock_path})"
                )
            if entry is not None:
                self._check_lock_writable()
            env = self.probe()
            gone, notes = self._plan_removals([key], mine, env)
            if gone:
                self._uninstall(gone)
            note = notes.get(key, "")
            previous = entry.version if entry else mine[key].version if key in mine else ""
            plugin = mine[key].plugin if key in mine else ""
            mine.pop(key, None)
            self._write_record(mine)
            if lock.drop(key):
                self._write_lock(lock)
        return _outcome(
            [Change(name=key, action="removed", previous=previous, plugin=plugin, note=note)]
        )

    def sync(self, *, index: str | None = None) -> Outcome:
        """Make the target environment hold exactly what the lock lists: each version
        with the lock's sha256 (whatever the index says now), and no other plugin the
        marketplace installed. Everything is downloaded and checked before anything
        changes."""
        self._indexes.clear()
        override = _field("index", check_index, index) if index else None
        with self._operation():
            lock = self.read_lock()
            mine = self.installed()
            env = self.probe()
            changes: list[Change] = []
            planned: list[tuple[LockEntry, Release, Path, WheelInfo, str]] = []
            for entry in lock.entries:
                ours = mine.get(entry.name)
                if self._in_place(entry.name, entry, env=env, mine=mine):
                    changes.append(
                        Change(
                            name=entry.name,
                            action="unchanged",
                            version=entry.version,
                            plugin=ours.plugin if ours else "",
                            enabled=entry.enabled,
                        )
                    )
                    continue
                present = env.distributions.get(entry.name)
                if present is not None and ours is None:
                    raise Refused(_not_ours(entry.name, present, self.target))
                url = override or entry.index
                release = self._locked_release(entry, url)
                path, info = self._wheel(entry.name, release, url)
                planned.append((entry, release, path, info, url))

            removals = sorted(name for name in mine if lock.get(name) is None)
            gone, notes = self._plan_removals(removals, mine, env)
            versions = {e.name: e.version for e, *_ in planned}
            for entry, _release, path, _info, _url in planned:
                self._check_dependencies(entry.name, path, env, versions)

            if planned:
                self._install([(e.name, p, e.sha256) for e, _r, p, _i, _u in planned])
                self._confirm({e.name: e.version for e, *_ in planned})
            for entry, _release, _path, info, url in planned:
                before = env.distributions.get(entry.name)
                plugin = str(info.manifest.get("name", ""))
                mine[entry.name] = InstalledPlugin(
                    version=entry.version, sha256=entry.sha256, plugin=plugin, index=url
                )
                changes.append(
                    Change(
                        name=entry.name,
                        action=_action(before, entry.version),
                        version=entry.version,
                        previous=before or "",
                        plugin=plugin,
                        enabled=entry.enabled,
                    )
                )
            if gone:
                self._uninstall(gone)
            for name in removals:
                dropped = mine.pop(name)
                changes.append(
                    Change(
                        name=name,
                        action="removed",
                        previous=dropped.version,
                        plugin=dropped.plugin,
                        note=notes.get(name, ""),
                    )
                )
            self._write_record(mine)
        return _outcome(sorted(changes, key=lambda c: c.name))

    def set_lock_enabled(self, plugin: str, enabled: bool) -> bool:
        """Mirror an operator's enable/disable of ``plugin`` (the host's name for it, which
        is its distribution's) in the lock, when the marketplace installed it; whether
        the lock changed."""
        key = str(canonicalize_name(plugin))
        if key not in self.installed():
            return False
        with self._operation():
            lock = self.read_lock()
            entry = lock.get(key)
            if entry is None or entry.enabled == enabled:
                return False
            lock.set_enabled(key, enabled)
            self._write_lock(lock)
        return True

    # Helpers of the changing operations -------------------------------------------------------

    def _plugin_name(self, key: str) -> str:
        item = self.installed().get(key)
        return item.plugin if item else ""

    def _in_place(
        self,
        key: str,
        entry: LockEntry,
        *,
        env: Environment | None = None,
        mine: dict[str, InstalledPlugin] | None = None,
    ) -> bool:
        """The locked version with the locked sha256 is what the marketplace installed
        here, and it is still there."""
        ours = (mine if mine is not None else self.installed()).get(key)
        if ours is None or ours.sha256 != entry.sha256:
            return False
        if not _version_equal(ours.version, Version(entry.version)):
            return False
        present = (env or self.probe()).distributions.get(key)
        return present is not None and _version_equal(present, Version(entry.version))

    def _locked_release(self, entry: LockEntry, url: str) -> Release:
        """The index's release for a lock entry, refused unless it is the locked wheel."""
        idx = self.load_index(url)
        plugin = idx.plugins.get(entry.name)
        if plugin is None:
            raise Refused(
                f"{self.lock_path.name} lists {entry.name}, which the index at {url} does not"
            )
        wanted = Version(entry.version)
        release = next((r for r in plugin.versions if _version_equal(r.version, wanted)), None)
        if release is None:
            raise Refused(
                f"{self.lock_path.name} lists {entry.name} {entry.version}, which the index at "
                f"{url} does not (it has: {', '.join(r.version for r in plugin.versions)})"
            )
        if release.sha256.lower() != entry.sha256:
            raise Refused(
                f"{entry.name} {entry.version}: the index at {url} now gives sha256 "
                f"{release.sha256}, {self.lock_path.name} says {entry.sha256}; refusing "
                "(a published version must never change)"
            )
        reason = skip_reason(
            entry.name,
            msgspec.structs.replace(release, yanked=False),
            Version(self.core_api),
            self.blocklist,
        )
        if reason is not None:
            raise Refused(f"{entry.name} {entry.version} cannot be installed: {reason}")
        return release

    def _put(self, key: str, release: Release, url: str, lock: Lock) -> Change:
        """Install one checked release over whatever version the marketplace had, then
        record it. Refusals come before anything is changed."""
        mine = self.installed()
        env = self.probe()
        present = env.distributions.get(key)
        ours = mine.get(key)
        if present is not None and ours is None:
            raise Refused(_not_ours(key, present, self.target))
        entry = lock.get(key)
        enabled = entry.enabled if entry else True
        if (
            entry is not None
            and entry.sha256 == release.sha256
            and _version_equal(entry.version, Version(release.version))
            and self._in_place(key, entry, env=env, mine=mine)
        ):
            return Change(
                name=key,
                action="unchanged",
                version=release.version,
                plugin=ours.plugin if ours else "",
                enabled=enabled,
                note="already installed",
            )
        path, info = self._wheel(key, release, url)
        self._check_dependencies(key, path, env, {})
        self._install([(key, path, release.sha256)])
        self._confirm({key: release.version})
        plugin = str(info.manifest.get("name", ""))
        mine[key] = InstalledPlugin(
            version=release.version, sha256=release.sha256, plugin=plugin, index=url
        )
        self._write_record(mine)
        lock.put(
            LockEntry(
                name=key,
                version=release.version,
                sha256=release.sha256,
                index=url,
                enabled=enabled,
            )
        )
        self._write_lock(lock)
        return Change(
            name=key,
            action=_action(present, release.version),
            version=release.version,
            previous=present or "",
            plugin=plugin,
            enabled=enabled,
        )

    def _confirm(self, expected: dict[str, str]) -> None:
        env = self.probe()
        for name, version in expected.items():
            present = env.distributions.get(name)
            if present is None or not _version_equal(present, Version(version)):
                raise InstallFailed(
                    f"uv reported success but {name} {version} is not installed in "
                    f"{self.target} (found: {present or 'nothing'})"
                )

    def _plan_removals(
        self, names: list[str], mine: dict[str, InstalledPlugin], env: Environment
    ) -> tuple[list[str], dict[str, str]]:
        """Which of ``names`` to uninstall: those the marketplace installed and that are
        still there as it left them; a note per name left alone. Refuses (before anything
        changes) when one was changed by hand."""
        notes: dict[str, str] = {}
        gone: list[str] = []
        for name in names:
            ours = mine.get(name)
            present = env.distributions.get(name)
            if ours is None:
                if present is not None:
                    notes[name] = "left installed: the marketplace did not install it"
                continue
            if present is None:
                notes[name] = "it was no longer installed"
                continue
            if not _version_equal(present, Version(ours.version)):
                raise Refused(
                    f"{name} {present} in {self.target} is not the {ours.version} the "
                    "marketplace installed: it was changed by hand; remove it by hand"
                )
            gone.append(name)
        return gone, notes


def _version_equal(a: str, b: Version) -> bool:
    try:
        return Version(a) == b
    except InvalidVersion:
        return False


def _action(before: str | None, after: str) -> str:
    if before is None:
        return "installed"
    try:
        old, new = Version(before), Version(after)
    except InvalidVersion:
        return "installed"
    if new > old:
        return "upgraded"
    if new < old:
        return "downgraded"
    return "reinstalled"


def _not_ours(name: str, version: str, python: str) -> str:
    return (
        f"{name} {version} is already installed in {python} and was not installed by the "
        "marketplace; refusing to replace or remove it"
    )


def _outcome(changes: list[Change]) -> Outcome:
    changed = any(c.action != "unchanged" for c in changes)
    lines = [c.line() for c in changes] or ["nothing to do"]
    detail = "; ".join(lines)
    if changed:
        detail += f"; {RESTART}"
    else:
        detail += "; nothing changed"
    return Outcome(changes=changes, restart_required=changed, detail=detail)


def apply_enabled(db: Database, changes: Sequence[Change], *, by: str) -> None:
    """Make the host's persisted enable/disable (``plugin_state``) agree with the lock's
    ``enabled`` for the plugins an operation touched. No row means enabled, so a row is
    written only to disable, or to flip an existing one."""
    with db.transaction() as session:
        for change in changes:
            if not change.plugin or change.action == "removed":
                continue
            row = session.get(PluginState, change.plugin)
            if row is None and change.enabled:
                continue
            if row is None:
                row = PluginState(name=change.plugin)
                session.add(row)
            elif row.enabled == change.enabled:
                continue
            row.enabled = change.enabled
            row.changed_at = utcnow()
            row.changed_by = by
