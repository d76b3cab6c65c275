"""The server-rendered setup page, so the link printed at first start works in a
plain browser before any dashboard is installed.

No script at all, no external assets, every interpolated value escaped, and a
Content-Security-Policy that would refuse anything else. The token sits in the
URL, so the page sends no Referer and is not cached.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery

from gakwaya.auth.principal import set_audit_target, state_of
from gakwaya.errors import GakwayaError
from gakwaya.identity.controllers import Db, KernelDep
from gakwaya.identity.schemas import (
    ACCOUNT_EMAIL_RULE,
    PERSON_NAME_RULE,
    SETUP_TOKEN_PATTERN,
    SETUP_TOKEN_RULE,
    SetupRequest,
)
from gakwaya.identity.setup import complete_setup, has_users
from gakwaya.kernel import Kernel

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;"
    "color:#1b1b1b}label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;"
    "box-sizing:border-box}button{margin-top:1.5rem;padding:.5rem 1rem}"
    ".error{color:#a40000;border:1px solid #a40000;padding:.5rem}"
    ".ok{color:#0a5c0a;border:1px solid #0a5c0a;padding:.5rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_FIELD_RULES = {
    "token": SETUP_TOKEN_RULE,
    "email": ACCOUNT_EMAIL_RULE,
    "name": PERSON_NAME_RULE,
    "password": "is required (at most 1024 characters)",
}
_TOKEN = re.compile(SETUP_TOKEN_PATTERN)
_AT = re.compile(r"at `\$\.(?P<field>[a-z_]+)`")
_MISSING = re.compile(r"missing required field `(?P<field>[a-z_]+)`")

e = html.escape


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(title)} · Gakwaya</title><style>{_STYLE}</style></head>"
        f"<body><h1>{e(title)}</h1>{body}</body></html>"
    )
    return Response(document, status_code=status, media_type=MediaType.HTML, headers=HEADERS)


def _done_page(status: int = 410) -> Response[str]:
    return _page(
        "Already set up",
        '<p class="ok">This panel already has an administrator. Sign in through the API '
        "(<code>POST /api/v1/auth/login</code>) or the dashboard; an administrator can add "
        "accounts with <code>gakwaya admin create</code>.</p>",
        status,
    )


def _form(
    kernel: Kernel,
    token: str,
    email: str = "",
    name: str = "",
    error: str = "",
    status: int = 200,
) -> Response[str]:
    min_length = kernel.settings.password_min_length
    token_field = (
        f'<input type="hidden" name="token" value="{e(token)}">'
        if token
        else '<label>Setup token<input name="token" required autocomplete="off"></label>'
    )
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        "<p>Create the first administrator of this panel. This link works once.</p>"
        f'{problem}<form method="post" action="setup">{token_field}'
        f'<label>Email<input type="email" name="email" required maxlength="254" '
        f'autocomplete="username" value="{e(email)}"></label>'
        f'<label>Name (optional)<input name="name" maxlength="100" autocomplete="name" '
        f'value="{e(name)}"></label>'
        f'<label>Password (at least {min_length} characters)<input type="password" '
        f'name="password" required minlength="{min_length}" maxlength="1024" '
        'autocomplete="new-password"></label>'
        '<label>Password again<input type="password" name="password2" required '
        'maxlength="1024" autocomplete="new-password"></label>'
        '<button type="submit">Create administrator</button></form>'
    )
    return _page("Set up Gakwaya", body, status)


@get(
    "/setup",
    operation_id="setup_page",
    opt={"public": True},
    include_in_schema=False,
    sync_to_thread=True,
)
def setup_page(db: Db, kernel: KernelDep, token: FromQuery[str | None] = None) -> Response[str]:
    """The form behind the link ``gakwaya serve`` prints while there is no user."""
    if has_users(db):
        return _done_page(200)
    token = token if token and _TOKEN.match(token) else ""
    return _form(kernel, token)


def _first(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""


def _describe(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    m = _MISSING.search(message) or _AT.search(message)
    field = m.group("field") if m else ""
    rule = _FIELD_RULES.get(field)
    return f"{field}: {rule}" if rule else "the form is incomplete; fill in every field"


@post(
    "/setup",
    operation_id="setup_submit",
    opt={"public": True},
    include_in_schema=False,
    status_code=201,
    sync_to_thread=True,
)
def setup_submit(
    request: Request[Any, Any, Any],
    db: Db,
    kernel: KernelDep,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[str]:
    """The setup form's target (form-encoded); answers with a page, never JSON."""
    form = {
        k: _first(v)
        for k, v in data.items()
        if k in {"token", "email", "name", "password", "password2"}
    }
    token = form.get("token", "")
    email = form.get("email", "")
    name = form.get("name", "")
    shown_token = token if _TOKEN.match(token) else ""
    state_of(request)["audit_actor"] = ("anonymous", "", email[:254])
    if has_users(db):
        return _done_page()
    if form.get("password", "") != form.pop("password2", ""):
        return _form(kernel, shown_token, email, name, "password: the two passwords differ", 422)
    values: dict[str, Any] = {k: v for k, v in form.items() if v != "" or k != "name"}
    try:
        req = msgspec.convert(values, SetupRequest)
    except msgspec.ValidationError as exc:
        return _form(kernel, shown_token, email, name, _describe(exc), 422)
    try:
        user = complete_setup(
            db, kernel, token=req.token, email=req.email, password=req.password, name=req.name
        )
        db.commit()
    except GakwayaError as exc:
        db.rollback()
        if exc.status_code == 410:
            return _done_page()
        return _form(kernel, shown_token, email, name, exc.detail, exc.status_code)
    state_of(request)["audit_actor"] = ("user", str(user.id), user.email)
    set_audit_target(request, "user", user.id, superuser=True)
    return _page(
        "Administrator created",
        f'<p class="ok">The administrator <strong>{e(user.email)}</strong> was created. '
        "Sign in through the API (<code>POST /api/v1/auth/login</code>) or the dashboard; "
        "from the command line, <code>gakwaya admin</code> manages accounts.</p>",
        201,
    )


PAGES = [setup_page, setup_submit]
