"""Routes of first-run setup, sign-in and the signed-in user's own account.

None of these accept API keys (an API key belongs to one organization, these
act on a person), except reading the account with a ``read`` key.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.orm import Session

from gakwaya.auth.middleware import SESSION_COOKIE, csrf_cookie, session_cookie
from gakwaya.auth.principal import Principal, set_audit_target, state_of
from gakwaya.identity import services
from gakwaya.identity.schemas import (
    AccountOut,
    AccountUpdate,
    EmailChange,
    LoginRequest,
    LoginResult,
    MfaRequest,
    PasswordChange,
    PasswordConfirm,
    RecoveryCodes,
    SessionOut,
    SetupRequest,
    TotpConfirm,
    TotpDisable,
    TotpEnrollment,
    UserOut,
)
from gakwaya.identity.setup import complete_setup
from gakwaya.kernel import Kernel
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page

AnyRequest = Request[Any, Any, Any]
# The kernel's dependencies, asked for by name (see gakwaya.app).
Db = NamedDependency[Session]
KernelDep = NamedDependency[Kernel]
Caller = NamedDependency[Principal]
ClientIp = NamedDependency[str]
TAGS_AUTH = ["auth"]
TAGS_ACCOUNT = ["account"]


def _user_agent(request: AnyRequest) -> str:
    return request.headers.get("user-agent", "")


def _session_cookies(kernel: Kernel, issued: services.IssuedSession) -> list[Cookie]:
    return [
        session_cookie(kernel, issued.token, max_age=issued.max_age),
        csrf_cookie(kernel, issued.csrf_token, max_age=issued.max_age),
    ]


def _cleared_cookies(kernel: Kernel) -> list[Cookie]:
    return [session_cookie(kernel, "", max_age=0), csrf_cookie(kernel, "", max_age=0)]


def _signed_in(kernel: Kernel, result: services.SignIn) -> Response[LoginResult]:
    if result.mfa_required:
        # Only the pending session cookie; there is no CSRF token until the second step.
        return Response(
            LoginResult(status="mfa_required"),
            status_code=200,
            cookies=[session_cookie(kernel, result.session.token, max_age=result.session.max_age)],
        )
    return Response(
        LoginResult(status="ok", user=result.user, csrf_token=result.session.csrf_token),
        status_code=200,
        cookies=_session_cookies(kernel, result.session),
    )


# Setup -------------------------------------------------------------------------------


@post(
    "/api/v1/setup",
    operation_id="setup_complete",
    opt={"public": True},
    tags=["setup"],
    status_code=201,
    sync_to_thread=True,
)
def setup_complete(
    request: AnyRequest, data: JSONBody[SetupRequest], db: Db, kernel: KernelDep
) -> UserOut:
    """Create the first administrator with the one-time token printed by
    ``gakwaya serve``. 410 once any user exists: sign in instead."""
    state_of(request)["audit_actor"] = ("anonymous", "", data.email)
    user = complete_setup(
        db, kernel, token=data.token, email=data.email, password=data.password, name=data.name
    )
    db.commit()
    state_of(request)["audit_actor"] = ("user", str(user.id), user.email)
    set_audit_target(request, "user", user.id, superuser=True)
    return services.user_out(user)


# Sign-in -----------------------------------------------------------------------------


@post(
    "/api/v1/auth/login",
    operation_id="auth_login",
    opt={"public": True},
    tags=TAGS_AUTH,
    status_code=200,
    sync_to_thread=True,
)
def auth_login(
    request: AnyRequest,
    data: JSONBody[LoginRequest],
    db: Db,
    kernel: KernelDep,
    client_ip: ClientIp,
) -> Response[LoginResult]:
    """Sign in with email and password. Sets the session cookie (always a new one)
    and, without two-factor authentication, the CSRF cookie; with it, answers
    ``mfa_required`` and POST /auth/mfa completes the sign-in. Failures are counted
    per account and per address; past the limit: 429 with Retry-After."""
    state = state_of(request)
    state["audit_actor"] = ("anonymous", "", data.email)
    result = services.login(
        db,
        kernel,
        email=data.email,
        password=data.password,
        ip=client_ip,
        user_agent=_user_agent(request),
        old_token=request.cookies.get(SESSION_COOKIE),
    )
    db.commit()
    state["audit_actor"] = ("user", str(result.user.id), result.user.email)
    set_audit_target(request, "user", result.user.id, mfa_required=result.mfa_required)
    return _signed_in(kernel, result)


@post(
    "/api/v1/auth/mfa",
    operation_id="auth_mfa",
    opt={"public": True},
    tags=TAGS_AUTH,
    status_code=200,
    sync_to_thread=True,
)
def auth_mfa(
    request: AnyRequest, data: JSONBody[MfaRequest], db: Db, kernel: KernelDep, client_ip: ClientIp
) -> Response[LoginResult]:
    """Second step of a sign-in: ``code`` from the authenticator app, or one unused
    ``recovery_code``. Replaces the pending session with a new signed-in one."""
    pending, user = services.pending_user(db, request.cookies.get(SESSION_COOKIE))
    state_of(request)["audit_actor"] = ("user", str(user.id), user.email)
    set_audit_target(
        request, "user", user.id, factor="recovery_code" if data.recovery_code else "totp"
    )
    result = services.complete_mfa(
        db,
        kernel,
        pending=pending,
        user=user,
        code=data.code,
        recovery_code=data.recovery_code,
        ip=client_ip,
        user_agent=_user_agent(request),
    )
    db.commit()
    return _signed_in(kernel, result)


@post(
    "/api/v1/auth/logout",
    operation_id="auth_logout",
    tags=TAGS_AUTH,
    status_code=204,
    sync_to_thread=True,
)
def auth_logout(
    request: AnyRequest, db: Db, kernel: KernelDep, principal: Caller
) -> Response[None]:
    """End this browser session and clear its cookies."""
    if principal.session_id is not None:
        services.end_session(db, principal.session_id)
        db.commit()
        set_audit_target(request, "session", principal.session_id)
    return Response(None, status_code=204, cookies=_cleared_cookies(kernel))


# The account -------------------------------------------------------------------------


@get(
    "/api/v1/account",
    operation_id="account_show",
    opt={"scope": "read"},
    tags=TAGS_ACCOUNT,
    sync_to_thread=True,
)
def account_show(db: Db, principal: Caller) -> AccountOut:
    """The signed-in user (an API key with the read scope shows its owner)."""
    return services.account_out(services.get_user(db, principal.user_id))


@patch(
    "/api/v1/account",
    operation_id="account_update",
    tags=TAGS_ACCOUNT,
    sync_to_thread=True,
)
def account_update(
    request: AnyRequest, data: JSONBody[AccountUpdate], db: Db, principal: Caller
) -> AccountOut:
    """Change your display name."""
    user = services.update_name(db, services.get_user(db, principal.user_id), data.name)
    db.commit()
    set_audit_target(request, "user", user.id)
    return services.account_out(user)


@post(
    "/api/v1/account/password",
    operation_id="account_password_change",
    tags=TAGS_ACCOUNT,
    status_code=200,
    sync_to_thread=True,
)
def account_password_change(
    request: AnyRequest,
    data: JSONBody[PasswordChange],
    db: Db,
    kernel: KernelDep,
    principal: Caller,
) -> AccountOut:
    """Change your password (the current one is asked again). Ends your other
    sessions; API keys stay valid."""
    user = services.get_user(db, principal.user_id)
    set_audit_target(request, "user", user.id)
    ended = services.change_password(
        db,
        kernel,
        user,
        current_password=data.current_password,
        new_password=data.new_password,
        keep_session_id=principal.session_id,
    )
    db.commit()
    set_audit_target(request, "user", user.id, sessions_ended=ended)
    return services.account_out(user)


@post(
    "/api/v1/account/email",
    operation_id="account_email_change",
    tags=TAGS_ACCOUNT,
    status_code=200,
    sync_to_thread=True,
)
def account_email_change(
    request: AnyRequest,
    data: JSONBody[EmailChange],
    db: Db,
    kernel: KernelDep,
    principal: Caller,
) -> AccountOut:
    """Change your sign-in address (your password is asked again). 409 when another
    account has it. Ends your other sessions."""
    user = services.get_user(db, principal.user_id)
    set_audit_target(request, "user", user.id)
    old = user.email
    ended = services.change_email(
        db,
        kernel,
        user,
        password=data.password,
        email=data.email,
        keep_session_id=principal.session_id,
    )
    db.commit()
    set_audit_target(
        request, "user", user.id, old_email=old, new_email=user.email, sessions_ended=ended
    )
    return services.account_out(user)


@post(
    "/api/v1/account/2fa/enroll",
    operation_id="account_2fa_enroll",
    tags=TAGS_ACCOUNT,
    status_code=200,
    sync_to_thread=True,
)
def account_2fa_enroll(
    request: AnyRequest,
    data: JSONBody[PasswordConfirm],
    db: Db,
    kernel: KernelDep,
    principal: Caller,
) -> TotpEnrollment:
    """Start two-factor enrolment: a new TOTP secret and its otpauth:// URI (for a QR
    code). Nothing changes until POST /account/2fa/confirm with a code from it."""
    user = services.get_user(db, principal.user_id)
    set_audit_target(request, "user", user.id)
    enrollment = services.enroll_totp(db, kernel, user, password=data.password)
    db.commit()
    return enrollment


@post(
    "/api/v1/account/2fa/confirm",
    operation_id="account_2fa_confirm",
    tags=TAGS_ACCOUNT,
    status_code=200,
    sync_to_thread=True,
)
def account_2fa_confirm(
    request: AnyRequest,
    data: JSONBody[TotpConfirm],
    db: Db,
    kernel: KernelDep,
    principal: Caller,
) -> RecoveryCodes:
    """Turn two-factor authentication on with a current code. Returns 10 single-use
    recovery codes, shown only this once."""
    user = services.get_user(db, principal.user_id)
    set_audit_target(request, "user", user.id)
    codes = services.confirm_totp(db, kernel, user, code=data.code)
    db.commit()
    return RecoveryCodes(recovery_codes=codes)


@post(
    "/api/v1/account/2fa/disable",
    operation_id="account_2fa_disable",
    tags=TAGS_ACCOUNT,
    status_code=200,
    sync_to_thread=True,
)
def account_2fa_disable(
    request: AnyRequest,
    data: JSONBody[TotpDisable],
    db: Db,
    kernel: KernelDep,
    principal: Caller,
) -> AccountOut:
    """Turn two-factor authentication off (password again; a code is checked when
    given). Ends your other sessions; recovery codes are deleted."""
    user = services.get_user(db, principal.user_id)
    set_audit_target(request, "user", user.id)
    ended = services.disable_totp(
        db,
        kernel,
        user,
        password=data.password,
        code=data.code,
        recovery_code=data.recovery_code,
        keep_session_id=principal.session_id,
    )
    db.commit()
    set_audit_target(request, "user", user.id, sessions_ended=ended)
    return services.account_out(user)


@post(
    "/api/v1/account/2fa/recovery-codes",
    operation_id="account_recovery_codes_regenerate",
    tags=TAGS_ACCOUNT,
    status_code=200,
    sync_to_thread=True,
)
def account_recovery_codes_regenerate(
    request: AnyRequest,
    data: JSONBody[PasswordConfirm],
    db: Db,
    kernel: KernelDep,
    principal: Caller,
) -> RecoveryCodes:
    """Ten new recovery codes; the previous ones stop working."""
    user = services.get_user(db, principal.user_id)
    set_audit_target(request, "user", user.id)
    codes = services.regenerate_recovery_codes(db, kernel, user, password=data.password)
    db.commit()
    return RecoveryCodes(recovery_codes=codes)


@get(
    "/api/v1/account/sessions",
    operation_id="account_sessions_list",
    tags=TAGS_ACCOUNT,
    sync_to_thread=True,
)
def account_sessions_list(
    db: Db,
    principal: Caller,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[str | None, QueryParameter(max_length=20)] = None,
) -> Page[SessionOut]:
    """Your signed-in browser sessions, newest first; ``current`` marks this one."""
    return services.list_sessions(
        db, principal.user_id, current_id=principal.session_id, limit=limit, cursor=cursor
    )


@delete(
    "/api/v1/account/sessions/{session_id:int}",
    operation_id="account_sessions_revoke",
    tags=TAGS_ACCOUNT,
    status_code=204,
    sync_to_thread=True,
)
def account_sessions_revoke(
    request: AnyRequest, session_id: FromPath[int], db: Db, kernel: KernelDep, principal: Caller
) -> Response[None]:
    """End one of your sessions (signs that browser out). Another person's session
    id is a 404."""
    set_audit_target(request, "session", session_id)
    services.revoke_session(db, principal.user_id, session_id)
    db.commit()
    cookies = _cleared_cookies(kernel) if session_id == principal.session_id else []
    return Response(None, status_code=204, cookies=cookies)


ROUTES = [
    setup_complete,
    auth_login,
    auth_mfa,
    auth_logout,
    account_show,
    account_update,
    account_password_change,
    account_email_change,
    account_2fa_enroll,
    account_2fa_confirm,
    account_2fa_disable,
    account_recovery_codes_regenerate,
    account_sessions_list,
    account_sessions_revoke,
]
