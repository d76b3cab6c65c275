"""Users, sign-in, sessions and second factors: the logic behind the API and the CLI.

Functions take a SQLAlchemy session and, where they need settings or the secret
box, the kernel. Callers commit on success; the sign-in failure paths commit
their throttle counts themselves before raising, because the error response
must not roll them back.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import RecoveryCode, SetupToken, User, UserSession
from gakwaya.errors import Conflict, FieldError, NotAuthenticated, NotFound
from gakwaya.identity import throttle, totp
from gakwaya.identity.schemas import (
    ACCOUNT_EMAIL_RULE,
    PERSON_NAME_RULE,
    AccountEmail,
    AccountOut,
    PersonName,
    SessionOut,
    TotpEnrollment,
    UserOut,
)
from gakwaya.pagination import Page, next_cursor, parse_cursor
from gakwaya.security.passwords import check_policy, hash_password, needs_rehash, verify_password
from gakwaya.security.tokens import digest, new_token

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

#: How long the step between password and second factor may take.
MFA_PENDING_TTL = dt.timedelta(minutes=5)
#: Wrong codes allowed on one pending sign-in before it has to start over.
MFA_MAX_ATTEMPTS = 5
SIGN_IN_FAILED = "the email address or password is not correct"


class CredentialRejected(FieldError):
    """A password or code given to confirm an action on the account was wrong.

    A 403 (the caller is signed in; a 401 would read as "session expired") that
    still names the field, like a 422, so a form can point at it."""

    status_code = 403
    title = "Forbidden"


# Users -------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(db: Session, email: str) -> User | None:
    return db.scalars(select(User).where(func.lower(User.email) == normalize_email(email))).first()


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id, email=user.email, name=user.name, two_factor_enabled=user.totp_enabled
    )


def account_out(user: User) -> AccountOut:
    return AccountOut(
        id=user.id,
        email=user.email,
        name=user.name,
        is_superuser=user.is_superuser,
        two_factor_enabled=user.totp_enabled,
        created_at=user.created_at,
        password_changed_at=user.password_changed_at,
    )


def validate_email(value: str, *, field: str = "email") -> str:
    """Check an address given outside a request body (the CLI) by the API's rule."""
    try:
        msgspec.convert(value, AccountEmail)
    except msgspec.ValidationError:
        raise FieldError(field, ACCOUNT_EMAIL_RULE) from None
    return normalize_email(value)


def validate_name(value: str, *, field: str = "name") -> str:
    try:
        msgspec.convert(value, PersonName)
    except msgspec.ValidationError:
        raise FieldError(field, PERSON_NAME_RULE) from None
    return value


def create_user(
    db: Session,
    kernel: Kernel,
    *,
    email: str,
    password: str,
    name: str | None = None,
    superuser: bool = False,
) -> User:
    """A new user after the password policy; 409 when the address is taken."""
    email = normalize_email(email)
    check_policy(
        password,
        field="password",
        min_length=kernel.settings.password_min_length,
        email=email,
    )
    if find_user(db, email) is not None:
        raise Conflict("email: an account with this address already exists")
    user = User(
        email=email,
        name=name if name is not None else email.split("@")[0][:100],
        password_hash=hash_password(password),
        is_superuser=superuser,
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict("email: an account with this address already exists") from None
    return user


def invalidate_setup_tokens(db: Session) -> None:
    """Once any user exists a setup link has nothing left to do."""
    db.execute(delete(SetupToken).where(SetupToken.used_at.is_(None)))


# Sessions ----------------------------------------------------------------------------


class IssuedSession(msgspec.Struct, kw_only=True):
    session_id: int
    token: str
    csrf_token: str
    max_age: int


def _issue_session(
    db: Session,
    kernel: Kernel,
    user: User,
    *,
    state: str,
    ip: str,
    user_agent: str,
) -> IssuedSession:
    """Always a fresh random token: a session id is never carried over a sign-in."""
    now = utcnow()
    ttl = (
        MFA_PENDING_TTL
        if state == "mfa_pending"
        else dt.timedelta(hours=kernel.settings.session_ttl_hours)
    )
    token, csrf = new_token(), new_token()
    row = UserSession(
        token_hash=digest(token),
        user_id=user.id,
        state=state,
        csrf_token=csrf,
        ip=ip[:64],
        user_agent=user_agent[:255],
        created_at=now,
        last_seen_at=now,
        expires_at=now + ttl,
    )
    db.add(row)
    db.flush()
    return IssuedSession(
        session_id=row.id, token=token, csrf_token=csrf, max_age=int(ttl.total_seconds())
    )


def delete_session_token(db: Session, token: str | None) -> None:
    """Drop the session a request carried, whoever's it is (no fixation)."""
    if token:
        db.execute(delete(UserSession).where(UserSession.token_hash == digest(token)))


def end_other_sessions(db: Session, user_id: int, keep_session_id: int | None) -> int:
    """End every session of the user but ``keep_session_id`` (API keys stay)."""
    stmt = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_session_id is not None:
        stmt = stmt.where(UserSession.id != keep_session_id)
    return int(db.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def end_session(db: Session, session_id: int) -> None:
    db.execute(delete(UserSession).where(UserSession.id == session_id))


def list_sessions(
    db: Session, user_id: int, *, current_id: int | None, limit: int, cursor: str | None
) -> Page[SessionOut]:
    after = parse_cursor(cursor)
    stmt = (
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.state == "active",
            UserSession.expires_at > utcnow(),
        )
        .order_by(UserSession.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        stmt = stmt.where(UserSession.id < after)
    rows = db.scalars(stmt).all()
    return Page(
        items=[
            SessionOut(
                id=r.id,
                created_at=r.created_at,
                last_seen_at=r.last_seen_at,
                expires_at=r.expires_at,
                ip=r.ip,
                user_agent=r.user_agent,
                current=r.id == current_id,
            )
            for r in rows[:limit]
        ],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


def revoke_session(db: Session, user_id: int, session_id: int) -> None:
    """Only the caller's own sessions; anyone else's id is a 404, like a missing one."""
    result = db.execute(
        delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"session {session_id} not found")


# Sign-in -----------------------------------------------------------------------------


class SignIn(msgspec.Struct, kw_only=True):
    """The outcome of a correct password (and, after /auth/mfa, second factor)."""

    user: UserOut
    session: IssuedSession
    mfa_required: bool


def login(
    db: Session,
    kernel: Kernel,
    *,
    email: str,
    password: str,
    ip: str,
    user_agent: str,
    old_token: str | None,
) -> SignIn:
    """Check the throttle, then the password; issue a session (pending when the
    user has two-factor authentication).

    Raises TooManyRequests while the account or the address is locked (even for
    a correct password) and NotAuthenticated with one message for an unknown
    address or a wrong password."""
    keys = throttle.keys_for(email, ip)
    throttle.check(db, keys)
    user = find_user(db, email)
    # verify_password spends an argon2 verification on a missing account too.
    if not verify_password(user.password_hash if user else None, password) or user is None:
        throttle.record_failure(db, kernel.settings, keys)
        db.commit()
        raise NotAuthenticated(SIGN_IN_FAILED)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    delete_session_token(db, old_token)
    db.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id, UserSession.expires_at <= utcnow()
        )
    )
    if user.totp_enabled:
        # The account counter is reset only after the second factor: a password
        # guesser must not get fresh code attempts from each correct password.
        issued = _issue_session(db, kernel, user, state="mfa_pending", ip=ip, user_agent=user_agent)
        return SignIn(user=user_out(user), session=issued, mfa_required=True)
    throttle.reset(db, throttle.account_key(user.email))
    issued = _issue_session(db, kernel, user, state="active", ip=ip, user_agent=user_agent)
    return SignIn(user=user_out(user), session=issued, mfa_required=False)


def pending_user(db: Session, token: str | None) -> tuple[UserSession, User]:
    """The session waiting for a second factor, and its user."""
    missing = NotAuthenticated(
        "no sign-in is waiting for a second factor (or it expired): "
        "sign in with your password first"
    )
    if not token:
        raise missing
    row = db.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == digest(token))
    ).first()
    if row is None:
        raise missing
    sess, user = row
    if sess.state != "mfa_pending" or sess.expires_at <= utcnow():
        raise missing
    return sess, user


def complete_mfa(
    db: Session,
    kernel: Kernel,
    *,
    pending: UserSession,
    user: User,
    code: str | None,
    recovery_code: str | None,
    ip: str,
    user_agent: str,
) -> SignIn:
    """Second step of a sign-in: a TOTP code or an unused recovery code.

    A wrong one counts against the pending session (at most MFA_MAX_ATTEMPTS)
    and the account's throttle; the right one replaces the pending session
    with a new active one."""
    if (code is None) == (recovery_code is None):
        raise FieldError("code", "send exactly one of 'code' or 'recovery_code'")
    account = throttle.account_key(user.email)
    throttle.check(db, throttle.keys_for(user.email, ip))
    if code is not None:
        ok = use_totp_code(db, kernel, user, code)
    else:
        ok = use_recovery_code(db, kernel, user, recovery_code or "")
    if not ok:
        pending.mfa_attempts += 1
        throttle.record_failure(db, kernel.settings, [account])
        left = MFA_MAX_ATTEMPTS - pending.mfa_attempts
        if left <= 0:
            db.delete(pending)
            db.commit()
            raise NotAuthenticated(
                "the code is not valid; too many wrong codes, sign in with your password again"
            )
        db.commit()
        raise NotAuthenticated(f"the code is not valid or was used already ({left} attempts left)")
    db.delete(pending)
    throttle.reset(db, account)
    issued = _issue_session(db, kernel, user, state="active", ip=ip, user_agent=user_agent)
    return SignIn(user=user_out(user), session=issued, mfa_required=False)


# Second factors ----------------------------------------------------------------------


def _accept_step(db: Session, user: User, secret: str, code: str) -> bool:
    step = totp.matching_step(secret, code, last_step=user.totp_last_step)
    if step is None:
        return False
    # Conditional, so two requests racing with the same code cannot both win.
    result = db.execute(
        update(User)
        .where(User.id == user.id, User.totp_last_step < step)
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    user.totp_last_step = step
    return True


def use_totp_code(db: Session, kernel: Kernel, user: User, code: str) -> bool:
    if not user.totp_enabled or not user.totp_secret:
        return False
    return _accept_step(db, user, kernel.box.decrypt(user.totp_secret), code)


def use_recovery_code(db: Session, kernel: Kernel, user: User, code: str) -> bool:
    if not user.totp_enabled:
        return False
    code_hash = kernel.box.mac(totp.normalize_recovery_code(code).encode())
    result = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def replace_recovery_codes(db: Session, kernel: Kernel, user: User) -> list[str]:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = totp.new_recovery_codes()
    for code in codes:
        db.add(
            RecoveryCode(
                user_id=user.id,
                code_hash=kernel.box.mac(totp.normalize_recovery_code(code).encode()),
            )
        )
    db.flush()
    return codes


# The account -------------------------------------------------------------------------


def reauthenticate(db: Session, kernel: Kernel, user: User, password: str, *, field: str) -> None:
    """Ask for the current password again before a sensitive change.

    Behind the account throttle, so a stolen session cannot be used to guess
    the password either."""
    keys = [throttle.account_key(user.email)]
    throttle.check(db, keys)
    if not verify_password(user.password_hash, password):
        throttle.record_failure(db, kernel.settings, keys)
        db.commit()
        raise CredentialRejected(field, "is not your current password")


def get_user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:  # deleted while the request was on its way
        raise NotAuthenticated("this account no longer exists")
    return user


def update_name(db: Session, user: User, name: str) -> User:
    user.name = name
    return user


def change_password(
    db: Session,
    kernel: Kernel,
    user: User,
    *,
    current_password: str,
    new_password: str,
    keep_session_id: int | None,
) -> int:
    """Returns how many other sessions were ended."""
    reauthenticate(db, kernel, user, current_password, field="current_password")
    check_policy(
        new_password,
        field="new_password",
        min_length=kernel.settings.password_min_length,
        email=user.email,
    )
    if new_password == current_password:
        raise FieldError("new_password", "must differ from your current password")
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    return end_other_sessions(db, user.id, keep_session_id)


def change_email(
    db: Session,
    kernel: Kernel,
    user: User,
    *,
    password: str,
    email: str,
    keep_session_id: int | None,
) -> int:
    reauthenticate(db, kernel, user, password, field="password")
    email = normalize_email(email)
    other = find_user(db, email)
    if other is not None and other.id != user.id:
        raise Conflict("email: an account with this address already exists")
    user.email = email
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict("email: an account with this address already exists") from None
    return end_other_sessions(db, user.id, keep_session_id)


def enroll_totp(db: Session, kernel: Kernel, user: User, *, password: str) -> TotpEnrollment:
    """A new secret, kept pending (encrypted) until a code from it is confirmed."""
    reauthenticate(db, kernel, user, password, field="password")
    if user.totp_enabled:
        raise Conflict(
            "two-factor authentication is already on; disable it first to enrol a new device"
        )
    secret = totp.new_secret()
    user.totp_pending_secret = kernel.box.encrypt(secret)
    return TotpEnrollment(secret=secret, otpauth_uri=totp.provisioning_uri(secret, user.email))


def confirm_totp(db: Session, kernel: Kernel, user: User, *, code: str) -> list[str]:
    """Turn two-factor on with the first code; returns the recovery codes (shown once)."""
    if user.totp_enabled:
        raise Conflict("two-factor authentication is already on")
    if not user.totp_pending_secret:
        raise Conflict("no enrolment to confirm: start with POST /api/v1/account/2fa/enroll")
    secret = kernel.box.decrypt(user.totp_pending_secret)
    if not _accept_step(db, user, secret, code):
        raise FieldError(
            "code", "is not the current code of your authenticator app (or was used already)"
        )
    user.totp_secret = user.totp_pending_secret
    user.totp_pending_secret = None
    user.totp_enabled = True
    return replace_recovery_codes(db, kernel, user)


def disable_totp(
    db: Session,
    kernel: Kernel,
    user: User,
    *,
    password: str,
    code: str | None,
    recovery_code: str | None,
    keep_session_id: int | None,
) -> int:
    reauthenticate(db, kernel, user, password, field="password")
    if not user.totp_enabled:
        raise Conflict("two-factor authentication is not on")
    account = [throttle.account_key(user.email)]
    if code is not None and not use_totp_code(db, kernel, user, code):
        throttle.record_failure(db, kernel.settings, account)
        db.commit()
        raise CredentialRejected("code", "is not a current code of your authenticator app")
    if recovery_code is not None and not use_recovery_code(db, kernel, user, recovery_code):
        throttle.record_failure(db, kernel.settings, account)
        db.commit()
        raise CredentialRejected("recovery_code", "is not one of your unused recovery codes")
    turn_off_totp(db, user)
    return end_other_sessions(db, user.id, keep_session_id)


def turn_off_totp(db: Session, user: User) -> None:
    user.totp_enabled = False
    user.totp_secret = None
    user.totp_pending_secret = None
    user.totp_last_step = 0
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def regenerate_recovery_codes(
    db: Session, kernel: Kernel, user: User, *, password: str
) -> list[str]:
    reauthenticate(db, kernel, user, password, field="password")
    if not user.totp_enabled:
        raise Conflict("two-factor authentication is not on; there are no recovery codes")
    return replace_recovery_codes(db, kernel, user)
