"""Your account: name and email, password, two-factor authentication, sessions.

Every change is the API's (``/api/v1/account...``): it asks for the password again
where it matters, ends other sessions when it should and writes the audit rows. The
pages only collect the fields, show the API's message beside the field it names,
and show what the API returns once (the QR code of a new TOTP secret, the recovery
codes) on the answer to the POST itself, never on a page that can be fetched again.
"""

from __future__ import annotations

import re
from typing import Any

import segno
from litestar import Request, Response
from litestar.params import FromPath, FromQuery

from gakwaya_webui.api import Api, ApiError, state_of
from gakwaya_webui.forms import Form, ask_confirmation, confirmed, text
from gakwaya_webui.render import form_errors, page, redirect
from gakwaya_webui.routing import page_get, page_post

AnyRequest = Request[Any, Any, Any]

#: What an enrolment answer's URI looks like; anything else (a tampered hidden field)
#: gets no QR code.
_OTPAUTH = re.compile(r"otpauth://totp/[A-Za-z0-9%._@+:\-]{1,300}\?[A-Za-z0-9%._@+=&\-]{1,500}")
_SECRET = re.compile(r"[?&]secret=([A-Z2-7]{16,128})")


def _api(request: AnyRequest, data: Form | None = None) -> Api:
    return Api.of(request, csrf=text(data, "csrf_token") if data is not None else None)


# The account ---------------------------------------------------------------------------


async def _account_page(
    request: AnyRequest,
    *,
    status: int = 200,
    name: str | None = None,
    email: str | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
) -> Response[str]:
    account = await Api.of(request).get("/account")
    return await page(
        request,
        "account/profile.html",
        status=status,
        account=account,
        name=account["name"] if name is None else name,
        email=account["email"] if email is None else email,
        field_errors=errors or {},
        error=error,
        section="profile",
    )


@page_get("/account")
async def account_show(request: AnyRequest) -> Response[Any]:
    return await _account_page(request)


@page_post("/account")
async def account_update(request: AnyRequest, data: Form) -> Response[Any]:
    name = text(data, "name")
    try:
        await _api(request, data).patch("/account", {"name": name})
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = form_errors(exc, ("name",))
        return await _account_page(
            request, status=exc.status, name=name, errors=fields, error=general
        )
    return redirect("/account", flash="Your name is saved.")


@page_post("/account/email")
async def account_email(request: AnyRequest, data: Form) -> Response[Any]:
    email = text(data, "email")
    try:
        await _api(request, data).post(
            "/account/email", {"email": email, "password": data.get("password", "")}
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = form_errors(exc, ("email", "password"))
        return await _account_page(
            request, status=exc.status, email=email, errors=fields, error=general
        )
    return redirect(
        "/account",
        flash=f"You now sign in with {email}. Your other sessions were signed out.",
    )


# Password ------------------------------------------------------------------------------


@page_get("/account/password")
async def password_page(request: AnyRequest) -> Response[Any]:
    await Api.of(request).get("/account")
    return await page(
        request, "account/password.html", field_errors={}, error=None, section="password"
    )


@page_post("/account/password")
async def password_change(request: AnyRequest, data: Form) -> Response[Any]:
    new = data.get("new_password", "")
    errors: dict[str, str] = {}
    error = None
    status = 422
    if new != data.get("new_password2", ""):
        errors = {"new_password2": "the two new passwords differ; type the same one twice"}
    else:
        try:
            await _api(request, data).post(
                "/account/password",
                {"current_password": data.get("current_password", ""), "new_password": new},
            )
        except ApiError as exc:
            if exc.status == 401:
                raise
            status = exc.status
            errors, error = form_errors(exc, ("current_password", "new_password"))
        else:
            return redirect(
                "/account", flash="Password changed. Your other sessions were signed out."
            )
    return await page(
        request,
        "account/password.html",
        status=status,
        field_errors=errors,
        error=error,
        section="password",
    )


# Two-factor authentication ---------------------------------------------------------------


async def _2fa_page(
    request: AnyRequest,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    form: str = "",
) -> Response[str]:
    account = await Api.of(request).get("/account")
    return await page(
        request,
        "account/2fa.html",
        status=status,
        account=account,
        field_errors=errors or {},
        error=error,
        failed_form=form,
        section="2fa",
    )


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code (dark on white, whatever the page's colour
    scheme: authenticator apps read that best), inline as a data: URI that the
    Content-Security-Policy allows for images."""
    code = segno.make(uri, error="m")
    return str(code.svg_data_uri(scale=5, border=4, dark="#000", light="#fff"))


async def _enrol_page(
    request: AnyRequest,
    uri: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    error: str | None = None,
) -> Response[str]:
    secret = _SECRET.search(uri)
    plain = secret.group(1) if secret else ""
    return await page(
        request,
        "account/2fa_enrol.html",
        status=status,
        otpauth_uri=uri,
        qr=qr_data_uri(uri),
        # Groups of four, as authenticator apps show it, for typing it in by hand.
        secret_groups=[plain[i : i + 4] for i in range(0, len(plain), 4)],
        field_errors=errors or {},
        error=error,
        section="2fa",
    )


@page_get("/account/2fa")
async def two_factor_page(request: AnyRequest) -> Response[Any]:
    return await _2fa_page(request)


def _password_error(exc: ApiError) -> tuple[dict[str, str], str | None]:
    """A wrong password (asked again) is the API's 403 naming ``password``."""
    return form_errors(exc, ("password", "code", "recovery_code"))


@page_post("/account/2fa/enroll")
async def two_factor_enrol(request: AnyRequest, data: Form) -> Response[Any]:
    try:
        enrolment = await _api(request, data).post(
            "/account/2fa/enroll", {"password": data.get("password", "")}
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = _password_error(exc)
        return await _2fa_page(
            request, status=exc.status, errors=fields, error=general, form="enrol"
        )
    return await _enrol_page(request, enrolment["otpauth_uri"])


@page_post("/account/2fa/confirm")
async def two_factor_confirm(request: AnyRequest, data: Form) -> Response[Any]:
    uri = text(data, "otpauth_uri")
    code = text(data, "code").replace(" ", "")
    try:
        answer = await _api(request, data).post("/account/2fa/confirm", {"code": code})
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = form_errors(exc, ("code",))
        if exc.status == 409 or not _OTPAUTH.fullmatch(uri):
            # Already on (the form sent twice), or no trustworthy URI to show again:
            # the two-factor page says where things stand.
            return await _2fa_page(request, status=exc.status, error=exc.detail)
        return await _enrol_page(request, uri, status=exc.status, errors=fields, error=general)
    return await page(
        request,
        "account/recovery_codes.html",
        codes=answer["recovery_codes"],
        enrolled=True,
        section="2fa",
    )


@page_post("/account/2fa/recovery-codes")
async def recovery_codes_regenerate(request: AnyRequest, data: Form) -> Response[Any]:
    try:
        answer = await _api(request, data).post(
            "/account/2fa/recovery-codes", {"password": data.get("password", "")}
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = _password_error(exc)
        return await _2fa_page(
            request, status=exc.status, errors=fields, error=general, form="codes"
        )
    return await page(
        request,
        "account/recovery_codes.html",
        codes=answer["recovery_codes"],
        enrolled=False,
        section="2fa",
    )


@page_post("/account/2fa/disable")
async def two_factor_disable(request: AnyRequest, data: Form) -> Response[Any]:
    body: dict[str, Any] = {"password": data.get("password", "")}
    code = text(data, "code").replace(" ", "")
    if code:
        body["code"] = code
    try:
        await _api(request, data).post("/account/2fa/disable", body)
    except ApiError as exc:
        if exc.status == 401:
            raise
        fields, general = _password_error(exc)
        return await _2fa_page(
            request, status=exc.status, errors=fields, error=general, form="disable"
        )
    return redirect(
        "/account/2fa",
        flash="Two-factor authentication is off. Your other sessions were signed out.",
    )


# Sessions ------------------------------------------------------------------------------


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Chrome (headless)"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "a script (httpx)"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def browser_label(user_agent: str) -> str:
    """ "Firefox on Linux" from a User-Agent header, to recognise a session at a
    glance (the full header is kept beside it)."""
    name = next((label for mark, label in _BROWSERS if mark in user_agent), "")
    system = next((label for mark, label in _SYSTEMS if mark in user_agent), "")
    if name and system:
        return f"{name} on {system}"
    return name or system or "Unknown browser"


@page_get("/account/sessions")
async def sessions_page(request: AnyRequest, cursor: FromQuery[str | None] = None) -> Response[Any]:
    listing = await Api.of(request).get("/account/sessions", {"cursor": cursor, "limit": 50})
    return await page(
        request,
        "account/sessions.html",
        sessions=[
            {**item, "browser": browser_label(item.get("user_agent") or "")}
            for item in listing["items"]
        ],
        next_cursor=listing.get("next_cursor"),
        cursor=cursor,
        section="sessions",
    )


@page_post("/account/sessions/{session_id:int}/revoke")
async def session_revoke(
    request: AnyRequest, session_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message="Sign this session out? The browser using it will have to sign in again.",
            label="Sign it out",
            back="/account/sessions",
        )
    await _api(request, data).delete(f"/account/sessions/{session_id}")
    if "gakwaya_session" not in state_of(request).cookies:
        # That was this browser's own session: the API cleared its cookies.
        return redirect("/login", flash="You signed this browser out.")
    return redirect("/account/sessions", flash="The session is signed out.")


ROUTES: list[Any] = [
    account_show,
    account_update,
    account_email,
    password_page,
    password_change,
    two_factor_page,
    two_factor_enrol,
    two_factor_confirm,
    recovery_codes_regenerate,
    two_factor_disable,
    sessions_page,
    session_revoke,
]
