"""argon2id password hashing with OWASP parameters, and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gakwaya.errors import FieldError

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# A dummy hash to spend the same time when the account does not exist.
_DUMMY = _hasher.hash("gakwaya-dummy-password-for-timing")

# The most common passwords of the public breach corpora that satisfy a 12 character
# minimum, plus obvious product-specific ones.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwerty123456",
        "1qaz2wsx3edc",
        "iloveyou1234",
        "aaaaaaaaaaaa",
        "111111111111",
        "000000000000",
        "abcdefghijkl",
        "abc123456789",
        "letmein12345",
        "welcome12345",
        "administrator",
        "admin1234567",
        "changeme1234",
        "trustno11234",
        "football1234",
        "baseball1234",
        "superman1234",
        "sunshine1234",
        "princess1234",
        "dragon123456",
        "monkey123456",
        "master123456",
        "qazwsxedcrfv",
        "zaq12wsxcde3",
        "asdfghjkl123",
        "zxcvbnm12345",
        "gakwaya12345",
        "gakwayagakwaya",
        "correcthorsebatterystaple",
        "passw0rd1234",
        "p@ssw0rd1234",
        "p@ssword1234",
        "123qweasdzxc",
    }
)


def check_policy(password: str, *, field: str, min_length: int, email: str = "") -> None:
    """Raise :class:`FieldError` when ``password`` is too short, common or the email."""
    if len(password) < min_length:
        raise FieldError(field, f"must be at least {min_length} characters long")
    if len(password) > 1024:
        raise FieldError(field, "must be at most 1024 characters long")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) <= 2:
        raise FieldError(field, "is a commonly used password; choose another")
    if email and lowered in {email.lower(), email.split("@")[0].lower()}:
        raise FieldError(field, "must not be your email address")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time: a missing account still costs one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
