"""The key format: ``gkw_`` + 32 random base62 characters + a 6-character CRC32 checksum.

The checksum lets the server (and secret scanners) reject a mistyped or made-up
key without a database lookup, as GitHub's token format does.
"""

from __future__ import annotations

import secrets
import string
import zlib

from gakwaya.security.tokens import digest

PREFIX = "gkw_"
ALPHABET = string.digits + string.ascii_letters  # base62
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(PREFIX) + 8


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return PREFIX + body + _checksum(body)


def well_formed(key: str) -> bool:
    if len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    body = key[len(PREFIX) : len(PREFIX) + BODY_LENGTH]
    if any(c not in ALPHABET for c in body):
        return False
    return secrets.compare_digest(key[-CHECKSUM_LENGTH:], _checksum(body))


def display_prefix(key: str) -> str:
    return key[:DISPLAY_LENGTH]


def key_digest(key: str) -> str:
    return digest(key)
