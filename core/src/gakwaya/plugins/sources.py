"""Rules for the values that say where plugins come from and what they are called.

Settings, the CLI and the API check the same values (index location, trusted keys,
plugin names and versions) with these functions, so a rule is written once. They
raise :class:`ValueError` carrying the rule; each caller turns it into its own error
(a setting that stops start-up, a 422 naming the field, one line on stderr).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from packaging.version import InvalidVersion, Version

from gakwaya_sdk.manifest import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
#: Characters that have no business in an index location: whitespace and control
#: characters, quotes, and what a shell or an argument parser would read as syntax.
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f;$`|&<>\"'\\]")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_VERSION_CHARS = re.compile(r"[0-9A-Za-z][0-9A-Za-z.!+_-]{0,63}")

MAX_NAME = 100
NAME_RULE = f"must match {NAME_PATTERN}, without '..', at most {MAX_NAME} characters"
VERSION_RULE = "must be a PEP 440 version such as 1.2.0"
INDEX_RULE = (
    "must be an https:// or http:// URL, a file:// URL or a file path, without "
    "whitespace, quotes, ';', '$', '`', '|', '&', '<', '>', '\\', '..' or a leading '-'"
)
KEY_RULE = (
    "each entry must be KEYID=BASE64PUBLIC: the 16 hex digit key id and the base64 "
    "ed25519 public key that 'python -m gakwaya_marketplace keygen' prints"
)


def check_name(value: str) -> str:
    """A plugin (distribution) name, as the index and ``plugins.lock`` key it."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_NAME
        or ".." in value
        or not _NAME.fullmatch(value)
    ):
        raise ValueError(NAME_RULE)
    return value


def check_version(value: str) -> str:
    """A PEP 440 version, made only of the characters such a version can hold."""
    if not isinstance(value, str) or not _VERSION_CHARS.fullmatch(value) or ".." in value:
        raise ValueError(VERSION_RULE)
    try:
        Version(value)
    except InvalidVersion:
        raise ValueError(VERSION_RULE) from None
    return value


def check_index(value: str) -> str:
    """The index location as a URL: ``http(s)://…`` as given, ``file://`` for a path.

    A relative path is resolved against the working directory, so what is recorded in
    ``plugins.lock`` means the same thing wherever it is read from.
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 2000
        or value.startswith("-")
        or ".." in value
        or _UNSAFE.search(value)
    ):
        raise ValueError(INDEX_RULE)
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(INDEX_RULE)
        return value
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ValueError(INDEX_RULE)
        path = Path(url2pathname(unquote(parts.path)))
        if not path.is_absolute():
            raise ValueError(INDEX_RULE)
        return path.as_uri()
    if scheme:
        raise ValueError(INDEX_RULE)
    return Path(value).expanduser().resolve().as_uri()


def parse_trusted_keys(values: Iterable[str]) -> dict[str, str]:
    """``KEYID=BASE64PUBLIC`` entries → ``{key_id: public_b64}``, each key checked
    against its id (the same format as ``python -m gakwaya_marketplace verify
    --trusted-key``)."""
    from gakwaya_marketplace.errors import MalformedDocument
    from gakwaya_marketplace.signing import key_id_of, load_public_key

    keys: dict[str, str] = {}
    for position, raw in enumerate(values, start=1):
        entry = raw.strip() if isinstance(raw, str) else ""
        key_id, sep, public = entry.partition("=")
        if not sep or not _KEY_ID.fullmatch(key_id) or not public:
            raise ValueError(f"entry {position}: {KEY_RULE}")
        try:
            key = load_public_key(public)
        except MalformedDocument:
            raise ValueError(
                f"entry {position} ({key_id}): the public key is not base64 of 32 bytes"
            ) from None
        if key_id_of(key) != key_id:
            raise ValueError(
                f"entry {position} ({key_id}): the key id does not match the public key"
            )
        keys[key_id] = public
    return keys
