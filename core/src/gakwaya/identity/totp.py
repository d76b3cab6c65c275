"""TOTP (RFC 6238) codes and recovery codes.

A code is accepted one 30-second step either side of now (clock drift), and
never twice: the caller stores the accepted step in ``users.totp_last_step`` and
every step at or below it is refused, so a code seen over a shoulder or in a
proxy log cannot be replayed, not even within its own window.
"""

from __future__ import annotations

import secrets
import time

import pyotp

from gakwaya.security.tokens import same

ISSUER = "Gakwaya"
STEP_SECONDS = 30
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are read from paper.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(
    secret: str, code: str, *, last_step: int, now: float | None = None
) -> int | None:
    """The time step ``code`` belongs to, if it is within the window and newer than
    ``last_step``; otherwise None. Every candidate is compared, in constant time."""
    otp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    step = current_step(now)
    found: int | None = None
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if same(otp.generate_otp(candidate), code) and candidate > last_step and found is None:
            found = candidate
    return found


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Codes like ``k3x9p-7hq2m``: 50 bits each, plenty for single-use codes that are
    also behind the account throttle."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize_recovery_code(code: str) -> str:
    """What is hashed: lower case, without the dash (people type it either way)."""
    return code.strip().lower().replace("-", "")
