"""Keep credentials out of every line the provider shows (logs, errors).

Git does not print the ``Authorization`` header or the key, but a server's message,
a proxy or a future git version might echo them; every line still passes through
here, so a leak needs two mistakes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
#: A header line, whatever value follows (a server echoing our request, a trace).
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*)\S.*")
#: Userinfo with a password in any URL.
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+):[^@/\s]+@")


class Scrubber:
    """Replaces each secret (and each line of a multi-line one) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        parts: set[str] = set()
        for secret in secrets:
            for piece in (secret, *secret.splitlines()):
                piece = piece.strip()
                # Short fragments (a key's "-----END…" line is long enough) would mask
                # ordinary words; no real secret line is this short.
                if len(piece) >= 6:
                    parts.add(piece)
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(parts, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
        return _URL_PASSWORD.sub(lambda m: m.group(1) + ":" + MASK + "@", text)
