"""Request and response bodies of setup, sign-in and the account.

The address and name types here are stricter than ``gakwaya_sdk.types``: their
patterns end in ``$(?!\\n)`` because Python's ``$`` also matches before a final
newline, and an email may not start with ``-`` nor hold quotes, backticks or shell
characters (an address ends up in logs, mails and command lines of operators).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from gakwaya_sdk.types import register_rule

ACCOUNT_EMAIL_PATTERN = (
    r"^(?!-)[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$(?!\n)"
)
ACCOUNT_EMAIL_RULE = (
    "an email address like name@example.com, at most 254 characters: letters, digits "
    "and . _ % + - before the @ (not starting with -), no spaces, quotes or control characters"
)
AccountEmail = Annotated[
    str,
    msgspec.Meta(pattern=ACCOUNT_EMAIL_PATTERN, max_length=254, description=ACCOUNT_EMAIL_RULE),
]

PERSON_NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,100}$(?!\n)"
PERSON_NAME_RULE = "1 to 100 characters, no control characters (newlines, tabs)"
PersonName = Annotated[str, msgspec.Meta(pattern=PERSON_NAME_PATTERN, description=PERSON_NAME_RULE)]

#: Any password being checked. The policy for new ones (length, common passwords)
#: is applied by the service so its 422 names the field and the configured minimum.
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, description="your password")]

TOTP_CODE_PATTERN = r"^[0-9]{6}$(?!\n)"
TOTP_CODE_RULE = "the 6 digits shown by your authenticator app"
TotpCode = Annotated[str, msgspec.Meta(pattern=TOTP_CODE_PATTERN, description=TOTP_CODE_RULE)]

RECOVERY_CODE_PATTERN = r"^[A-Za-z0-9]{5}-?[A-Za-z0-9]{5}$(?!\n)"
RECOVERY_CODE_RULE = "one of your recovery codes, like abcde-23456"
RecoveryCodeText = Annotated[
    str, msgspec.Meta(pattern=RECOVERY_CODE_PATTERN, description=RECOVERY_CODE_RULE)
]

SETUP_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,100}$(?!\n)"  # noqa: S105 (a pattern)
SETUP_TOKEN_RULE = "the token of the setup link printed by 'gakwaya serve'"  # noqa: S105
SetupTokenText = Annotated[
    str, msgspec.Meta(pattern=SETUP_TOKEN_PATTERN, description=SETUP_TOKEN_RULE)
]

for _pattern, _rule in (
    (ACCOUNT_EMAIL_PATTERN, ACCOUNT_EMAIL_RULE),
    (PERSON_NAME_PATTERN, PERSON_NAME_RULE),
    (TOTP_CODE_PATTERN, TOTP_CODE_RULE),
    (RECOVERY_CODE_PATTERN, RECOVERY_CODE_RULE),
    (SETUP_TOKEN_PATTERN, SETUP_TOKEN_RULE),
):
    register_rule(_pattern, _rule)


class _In(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse unknown fields, so a typo is an error, not a no-op."""


# Setup -------------------------------------------------------------------------------


class SetupRequest(_In):
    token: SetupTokenText
    email: AccountEmail
    password: Password
    name: PersonName | None = None


# Sign-in -----------------------------------------------------------------------------


class LoginRequest(_In):
    email: AccountEmail
    password: Password


class MfaRequest(_In):
    """Exactly one of ``code`` (from the authenticator app) or ``recovery_code``."""

    code: TotpCode | None = None
    recovery_code: RecoveryCodeText | None = None


class UserOut(msgspec.Struct, kw_only=True):
    id: int
    email: str
    name: str
    two_factor_enabled: bool


class LoginResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``status`` is ``ok`` (signed in) or ``mfa_required`` (POST /auth/mfa next).

    ``csrf_token`` goes in the ``X-CSRF-Token`` header of every write made with the
    session cookie; it is also in the ``gakwaya_csrf`` cookie.
    """

    status: Literal["ok", "mfa_required"]
    user: UserOut | None = None
    csrf_token: str | None = None


# The account -------------------------------------------------------------------------


class AccountOut(msgspec.Struct, kw_only=True):
    id: int
    email: str
    name: str
    is_superuser: bool
    two_factor_enabled: bool
    created_at: dt.datetime
    password_changed_at: dt.datetime


class AccountUpdate(_In):
    name: PersonName


class PasswordChange(_In):
    current_password: Password
    new_password: Password


class EmailChange(_In):
    password: Password
    email: AccountEmail


class PasswordConfirm(_In):
    password: Password


class TotpEnrollment(msgspec.Struct, kw_only=True):
    """Show ``otpauth_uri`` as a QR code, or let the user type ``secret``."""

    secret: str
    otpauth_uri: str


class TotpConfirm(_In):
    code: TotpCode


class TotpDisable(_In):
    password: Password
    #: Optional; when given it must be a current code (or an unused recovery code).
    code: TotpCode | None = None
    recovery_code: RecoveryCodeText | None = None


class RecoveryCodes(msgspec.Struct, kw_only=True):
    """Shown once. Each code signs in once when the authenticator is lost."""

    recovery_codes: list[str]


class SessionOut(msgspec.Struct, kw_only=True):
    id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    ip: str
    user_agent: str
    current: bool
