"""``plugins.lock``: the marketplace plugins of an installation, exactly.

A TOML document::

    # comment lines at the top are kept on every write
    version = 1

    [[plugins]]
    name = "gakwaya-hello"      # distribution name, as the index lists it
    version = "1.1.0"
    sha256 = "…"                # of the wheel that was installed
    index = "https://…"         # the index it came from
    enabled = true

Written by ``gakwaya plugins install|upgrade|remove`` (and the API), reproduced by
``gakwaya plugins sync``. Every write replaces the file atomically (a temporary file
in the same directory, then a rename), so a crash leaves the old lock or the new one.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from gakwaya.plugins.sources import check_index, check_name, check_version

LOCK_VERSION = 1
DEFAULT_HEADER = (
    "# The plugins installed in this panel, exactly: name, version, wheel sha256, source\n"
    "# index, enabled. Written by `gakwaya plugins install|upgrade|remove` and reproduced\n"
    "# by `gakwaya plugins sync`.\n"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("name", "version", "sha256", "index", "enabled")


class LockError(Exception):
    """The lock file cannot be read or written; the message names the entry and field."""


@dataclass(frozen=True, kw_only=True)
class LockEntry:
    name: str
    version: str
    sha256: str
    index: str
    enabled: bool = True


@dataclass(kw_only=True)
class Lock:
    entries: list[LockEntry] = field(default_factory=list)
    #: The comment lines at the top of the file, kept as they are.
    header: str = DEFAULT_HEADER

    def get(self, name: str) -> LockEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def put(self, entry: LockEntry) -> None:
        """Add or replace the entry of ``entry.name``, keeping the list sorted by name."""
        self.entries = sorted(
            [e for e in self.entries if e.name != entry.name] + [entry], key=lambda e: e.name
        )

    def drop(self, name: str) -> bool:
        before = len(self.entries)
        self.entries = [e for e in self.entries if e.name != name]
        return len(self.entries) != before

    def set_enabled(self, name: str, enabled: bool) -> bool:
        entry = self.get(name)
        if entry is None:
            return False
        self.put(replace(entry, enabled=enabled))
        return True


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line if line.endswith("\n") else line + "\n")
    return "".join(lines)


def _entry(position: int, raw: Any, path: Path) -> LockEntry:
    where = f"{path}: plugins entry {position}"
    if not isinstance(raw, dict):
        raise LockError(f"{where}: must be a table with {', '.join(_FIELDS)}")
    name = raw.get("name")
    if isinstance(name, str):
        where = f"{path}: plugins entry {position} ({name})"
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise LockError(f"{where}: unknown field {unknown[0]!r}")
    for key in _FIELDS:
        if key not in raw:
            raise LockError(f"{where}: field {key!r} is missing")
    for key in ("name", "version", "sha256", "index"):
        if not isinstance(raw[key], str):
            raise LockError(f"{where}: field {key!r} must be a string")
    if not isinstance(raw["enabled"], bool):
        raise LockError(f"{where}: field 'enabled' must be true or false")
    checks = (("name", check_name), ("version", check_version), ("index", check_index))
    for key, check in checks:
        try:
            check(raw[key])
        except ValueError as exc:
            raise LockError(f"{where}: field {key!r} {exc}") from None
    if not _SHA256.fullmatch(raw["sha256"]):
        raise LockError(f"{where}: field 'sha256' must be 64 lower-case hex digits")
    return LockEntry(
        name=raw["name"],
        version=raw["version"],
        sha256=raw["sha256"],
        index=raw["index"],
        enabled=raw["enabled"],
    )


def read_lock(path: Path) -> Lock:
    """The lock at ``path``; an empty one (default header) when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lock()
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{path}: not valid TOML ({exc})") from None
    if data.get("version") != LOCK_VERSION:
        raise LockError(f"{path}: field 'version' must be {LOCK_VERSION}")
    unknown = sorted(set(data) - {"version", "plugins"})
    if unknown:
        raise LockError(f"{path}: unknown top-level field {unknown[0]!r}")
    raw_entries = data.get("plugins", [])
    if not isinstance(raw_entries, list):
        raise LockError(f"{path}: 'plugins' must be an array of tables ([[plugins]])")
    entries = [_entry(i, raw, path) for i, raw in enumerate(raw_entries, start=1)]
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise LockError(f"{path}: plugin {entry.name!r} is listed twice")
        seen.add(entry.name)
    return Lock(entries=entries, header=_header(text))


def render_lock(lock: Lock) -> str:
    document: dict[str, Any] = {
        "version": LOCK_VERSION,
        "plugins": [
            {
                "name": e.name,
                "version": e.version,
                "sha256": e.sha256,
                "index": e.index,
                "enabled": e.enabled,
            }
            for e in sorted(lock.entries, key=lambda e: e.name)
        ],
    }
    return lock.header + tomli_w.dumps(document)


def write_lock(path: Path, lock: Lock) -> None:
    """Replace the file atomically: a temporary file beside it, flushed, then renamed."""
    text = render_lock(lock)
    directory = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise LockError(f"{path}: cannot write: {exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LockError(f"{path}: cannot write: {exc}") from None


def check_writable(path: Path) -> None:
    """Fail before changing anything when the lock could not be written afterwards."""
    directory = path.parent
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise LockError(f"{path}: cannot write: directory {directory} is not writable")
    if path.exists() and not os.access(path, os.R_OK):
        raise LockError(f"{path}: cannot read")
