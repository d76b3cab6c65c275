"""Sign-in (with the two-factor step) and sign-out, through the API's auth routes.

The API sets the session cookies; the dashboard hands them to the browser unchanged
(see ``render.headers_middleware``). A sign-in that needs a second factor gets a
pending session cookie and ``mfa_required``: the browser goes to /login/2fa.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.params import FromQuery

from gakwaya_webui.api import Api, ApiError
from gakwaya_webui.forms import Form, text
from gakwaya_webui.render import form_errors, page, redirect, safe_next
from gakwaya_webui.routing import page_get, page_post

AnyRequest = Request[Any, Any, Any]


@page_get("/login")
async def login_page(request: AnyRequest, next: FromQuery[str | None] = None) -> Response[Any]:
    return await page(
        request, "login.html", next=safe_next(next), email="", error=None, field_errors={}
    )


@page_post("/login")
async def login_submit(request: AnyRequest, data: Form) -> Response[Any]:
    target = safe_next(text(data, "next"))
    email = text(data, "email")
    api = Api.of(request)
    try:
        result = await api.post(
            "/auth/login", {"email": email, "password": data.get("password", "")}
        )
    except ApiError as exc:
        fields, general = form_errors(exc, ("email", "password"))
        if exc.status == 401 and not fields:
            general = "Wrong email or password."
        return await page(
            request,
            "login.html",
            status=exc.status if exc.status in (400, 422, 429) else 401,
            next=target,
            email=email,
            error=general,
            field_errors=fields,
        )
    if result.get("status") == "mfa_required":
        return redirect("/login/2fa?next=" + quote(target, safe="/"))
    return redirect(target)


@page_get("/login/2fa")
async def mfa_page(request: AnyRequest, next: FromQuery[str | None] = None) -> Response[Any]:
    return await page(request, "login_2fa.html", next=safe_next(next), error=None, field_errors={})


@page_post("/login/2fa")
async def mfa_submit(request: AnyRequest, data: Form) -> Response[Any]:
    target = safe_next(text(data, "next"))
    code, recovery = text(data, "code"), text(data, "recovery_code")
    body = {"recovery_code": recovery} if recovery and not code else {"code": code}
    try:
        await Api.of(request).post("/auth/mfa", body)
    except ApiError as exc:
        if exc.status == 401 and "attempts left" not in exc.detail:
            # No pending sign-in any more (expired, or too many wrong codes).
            return redirect("/login?next=" + quote(target, safe="/"), flash=exc.detail)
        fields, general = form_errors(exc, ("code", "recovery_code"))
        return await page(
            request,
            "login_2fa.html",
            status=exc.status,
            next=target,
            error=general,
            field_errors=fields,
        )
    return redirect(target)


@page_post("/logout")
async def logout(request: AnyRequest, data: Form) -> Response[Any]:
    try:
        await Api.of(request, csrf=text(data, "csrf_token")).post("/auth/logout")
    except ApiError as exc:
        if exc.status != 401:
            raise
    return redirect("/login", flash="You are signed out.")


ROUTES: list[Any] = [login_page, login_submit, mfa_page, mfa_submit, logout]
