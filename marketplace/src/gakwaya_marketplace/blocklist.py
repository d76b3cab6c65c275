"""The blocklist: plugin versions known to be bad.

A JSON list of ``{"name", "lowest_good_version", "reason"}``: every version of
``name`` below ``lowest_good_version`` is blocked (PEP 440 order, names compared
normalised). ``lowest_good_version: null`` blocks every version of the plugin.
"""

from __future__ import annotations

import msgspec
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gakwaya_marketplace.errors import MalformedDocument


class BlockEntry(msgspec.Struct, kw_only=True):
    name: str
    lowest_good_version: str | None
    reason: str


def load_blocklist(data: bytes | str) -> list[BlockEntry]:
    """Parse and check a blocklist; :class:`MalformedDocument` on any error."""
    try:
        entries = msgspec.json.decode(data, type=list[BlockEntry])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise MalformedDocument(f"blocklist is malformed: {exc}") from exc
    for entry in entries:
        if entry.lowest_good_version is not None:
            try:
                Version(entry.lowest_good_version)
            except InvalidVersion as exc:
                raise MalformedDocument(
                    f"blocklist entry {entry.name!r}: "
                    f"{entry.lowest_good_version!r} is not a PEP 440 version"
                ) from exc
    return entries


def is_blocked(name: str, version: str, blocklist: list[BlockEntry]) -> str | None:
    """The reason ``name`` ``version`` is blocked, or ``None`` when it is not.

    An unparsable ``version`` is treated as blocked: nothing can prove it is good.
    """
    wanted = canonicalize_name(name)
    for entry in blocklist:
        if canonicalize_name(entry.name) != wanted:
            continue
        if entry.lowest_good_version is None:
            return entry.reason
        try:
            if Version(version) < Version(entry.lowest_good_version):
                return entry.reason
        except InvalidVersion:
            return f"{entry.reason} (version {version!r} is not a PEP 440 version)"
    return None
