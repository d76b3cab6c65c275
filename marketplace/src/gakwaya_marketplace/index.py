"""The index format: msgspec Structs and their one canonical JSON encoding.

An index lists plugins by their normalised distribution name (PEP 503:
``packaging.utils.canonicalize_name``), each with its releases newest first. The
encoding is canonical (object keys sorted, no insignificant whitespace, UTF-8), so the
same index always yields the same bytes; but verification never relies on that: it
checks the exact bytes embedded in the signed document (see :mod:`.signing`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from gakwaya_marketplace.errors import MalformedDocument

#: Bumped on an incompatible change of the format; readers refuse other versions.
FORMAT_VERSION = 1


class Release(msgspec.Struct, kw_only=True):
    """One published version of a plugin: a single wheel."""

    version: str
    #: The plugin manifest shipped in the wheel (``<package>/gakwaya-plugin.toml``).
    manifest: dict[str, Any]
    wheel_url: str
    #: Lower-case hex sha256 of the wheel file.
    sha256: str
    #: Size of the wheel file in bytes.
    size: int
    #: PEP 440 specifier of the core API versions the release works with (``">=1,<2"``).
    core_api: str
    published_at: datetime
    yanked: bool = False


class Plugin(msgspec.Struct, kw_only=True):
    name: str
    summary: str = ""
    homepage: str = ""
    #: Newest first (PEP 440 order).
    versions: list[Release] = msgspec.field(default_factory=list)


class Index(msgspec.Struct, kw_only=True):
    format_version: int = FORMAT_VERSION
    generated_at: datetime
    plugins: dict[str, Plugin] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder(order="sorted")


def encode_index(index: Index) -> bytes:
    """The canonical bytes of ``index`` (sorted keys, compact, UTF-8)."""
    return _encoder.encode(index)


def decode_index(data: bytes | str) -> Index:
    """Parse index JSON; :class:`MalformedDocument` on any shape or version error."""
    try:
        index = msgspec.json.decode(data, type=Index)
    except msgspec.ValidationError as exc:
        raise MalformedDocument(f"index does not match the format: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise MalformedDocument(f"index is not valid JSON: {exc}") from exc
    if index.format_version != FORMAT_VERSION:
        raise MalformedDocument(
            f"index format_version {index.format_version} is not supported "
            f"(this reader understands {FORMAT_VERSION})"
        )
    return index
