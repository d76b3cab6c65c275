"""An organization's people and access: members and roles, invitations (and the
page an invited person opens), API keys, the audit log.

Each page first asks the API for the organization (``GET /orgs/{org}``): someone
who is not a member gets the API's 404, exactly as from the API itself. Whether a
control is shown (change a role, invite) follows the caller's role only as a hint
to keep the page uncluttered; what is allowed is decided by the API call behind the
control, and its refusal is shown as it comes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery

from gakwaya_sdk.types import SLUG_PATTERN
from gakwaya_webui.api import Api, ApiError
from gakwaya_webui.forms import Form, ask_confirmation, confirmed, text
from gakwaya_webui.render import form_errors, page, redirect
from gakwaya_webui.routing import page_get, page_post

AnyRequest = Request[Any, Any, Any]
#: A form with repeated fields (the API key's scopes): values are a string or a list.
MultiForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

#: Lowest first, as the API ranks them.
ROLES = ("viewer", "developer", "admin", "owner")
MANAGERS = ("admin", "owner")
SCOPES = (
    ("read", "Read: list and show everything, change nothing"),
    ("deploy", "Deploy: start deployments and rollbacks"),
    ("write", "Write: create and change apps, settings and variables"),
    ("admin", "Admin: members, invitations and the organization itself"),
)
OUTCOMES = ("success", "denied", "failure", "error")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SLUG = re.compile(SLUG_PATTERN)


def _api(request: AnyRequest, data: Any = None) -> Api:
    csrf = text(data, "csrf_token") if data is not None else None
    return Api.of(request, csrf=csrf)


async def _org(request: AnyRequest, org: str) -> dict[str, Any]:
    """The organization with the caller's role in it (the API's 404 otherwise)."""
    found: dict[str, Any] = await Api.of(request).get(_base(org))
    return found


def _base(org: str) -> str:
    """``/orgs/<org>``: the API path of the organization, and the page's."""
    if not _SLUG.match(org):
        # Not a name an organization can have: the same 404 as an unknown one, and
        # never a path with dot segments sent on to the API.
        raise ApiError(404, "Not found", "organization not found")
    return f"/orgs/{org}"


def _roles_up_to(role: str) -> list[str]:
    """The roles someone with ``role`` may hand out (the API refuses more anyway)."""
    return list(ROLES[: ROLES.index(role) + 1]) if role in ROLES else []


# Members -------------------------------------------------------------------------------


@page_get("/orgs/{org:str}/members")
async def members_page(
    request: AnyRequest, org: FromPath[str], cursor: FromQuery[str | None] = None
) -> Response[Any]:
    current = await _org(request, org)
    listing = await Api.of(request).get(f"{_base(org)}/members", {"cursor": cursor, "limit": 100})
    me = await Api.of(request).get("/account")
    return await page(
        request,
        "org_admin/members.html",
        current=current,
        members=listing["items"],
        next_cursor=listing.get("next_cursor"),
        cursor=cursor,
        my_id=me["id"],
        can_manage=current["role"] in MANAGERS,
        roles=_roles_up_to(current["role"]),
        section="members",
    )


@page_post("/orgs/{org:str}/members/{user_id:int}/role")
async def member_role(
    request: AnyRequest, org: FromPath[str], user_id: FromPath[int], data: Form
) -> Response[Any]:
    role = text(data, "role")
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=f"Change this member's role to {role}? It takes effect at once.",
            label="Change role",
            back=f"{_base(org)}/members",
            keep=("role",),
        )
    answer = await _api(request, data).patch(f"{_base(org)}/members/{user_id}", {"role": role})
    return redirect(f"{_base(org)}/members", flash=f"{answer['email']} is now {answer['role']}.")


@page_post("/orgs/{org:str}/members/{user_id:int}/remove")
async def member_remove(
    request: AnyRequest, org: FromPath[str], user_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=(
                "Remove this member from the organization? They lose access at once and "
                "their API keys here are revoked."
            ),
            label="Remove member",
            back=f"{_base(org)}/members",
        )
    await _api(request, data).delete(f"{_base(org)}/members/{user_id}")
    return redirect(f"{_base(org)}/members", flash="The member was removed.")


@page_post("/orgs/{org:str}/leave")
async def org_leave(request: AnyRequest, org: FromPath[str], data: Form) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message=(
                "Leave this organization? You lose access at once and your API keys here "
                "are revoked; only an invitation brings you back."
            ),
            label="Leave organization",
            back=f"{_base(org)}/members",
        )
    await _api(request, data).post(f"{_base(org)}/leave")
    return redirect("/", flash=f"You left {org}.")


# Invitations ---------------------------------------------------------------------------


async def _invitations_page(
    request: AnyRequest,
    org: str,
    *,
    show: str = "pending",
    status: int = 200,
    issued: dict[str, Any] | None = None,
    email: str = "",
    role: str = "developer",
    errors: dict[str, str] | None = None,
    error: str | None = None,
) -> Response[str]:
    current = await _org(request, org)
    listing = await Api.of(request).get(f"{_base(org)}/invitations", {"status": show, "limit": 200})
    return await page(
        request,
        "org_admin/invitations.html",
        status=status,
        current=current,
        invitations=listing["items"],
        show=show,
        roles=_roles_up_to(current["role"]),
        issued=issued,
        email=email,
        role=role,
        field_errors=errors or {},
        error=error,
        section="invitations",
    )


@page_get("/orgs/{org:str}/invitations")
async def invitations_page(
    request: AnyRequest, org: FromPath[str], show: FromQuery[str | None] = None
) -> Response[Any]:
    return await _invitations_page(request, org, show="all" if show == "all" else "pending")


@page_post("/orgs/{org:str}/invitations")
async def invitation_create(request: AnyRequest, org: FromPath[str], data: Form) -> Response[Any]:
    email, role = text(data, "email"), text(data, "role")
    try:
        issued = await _api(request, data).post(
            f"{_base(org)}/invitations", {"email": email, "role": role}
        )
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("email", "role"))
        return await _invitations_page(
            request, org, status=exc.status, email=email, role=role, errors=fields, error=general
        )
    # The link holds the invitation's secret: shown on this answer only.
    return await _invitations_page(request, org, status=201, issued=issued)


@page_post("/orgs/{org:str}/invitations/{invitation_id:int}/revoke")
async def invitation_revoke(
    request: AnyRequest, org: FromPath[str], invitation_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message="Revoke this invitation? Its link stops working at once.",
            label="Revoke invitation",
            back=f"{_base(org)}/invitations",
        )
    await _api(request, data).delete(f"{_base(org)}/invitations/{invitation_id}")
    return redirect(f"{_base(org)}/invitations", flash="The invitation was revoked.")


# Accepting an invitation (the link the invited person opens) ------------------------------


async def _accept_page(
    request: AnyRequest,
    token: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    name: str = "",
) -> Response[str]:
    api = Api.of(request)
    me = offer = None
    unusable = None
    try:
        me = await api.get("/account")
    except ApiError as exc:
        if exc.status != 401:
            raise
    if token:
        # Which organization, role and address: the page says so before anyone joins.
        # A used, revoked, expired or unknown link gets the API's reason and no forms.
        try:
            offer = await api.post("/invitations/preview", {"token": token})
        except ApiError as exc:
            if exc.status not in (404, 410, 422):
                raise
            unusable = exc.detail
            status = exc.status if status == 200 else status
    return await page(
        request,
        "org_admin/accept.html",
        status=status,
        token=token,
        offer=offer,
        unusable=unusable,
        signed_in=me,
        field_errors=errors or {},
        error=error,
        name=name,
        login_next=quote(f"/invite/{quote(token, safe='')}", safe=""),
    )


@page_get("/invite/{token:str}")
async def invite_page(request: AnyRequest, token: FromPath[str]) -> Response[Any]:
    return await _accept_page(request, token)


@page_get("/invitations/accept")
async def invite_page_by_query(
    request: AnyRequest, token: FromQuery[str | None] = None
) -> Response[Any]:
    """The address the API puts in an invitation's ``accept_url``."""
    return await _accept_page(request, token or "")


def _joined(answer: dict[str, Any]) -> Response[Any]:
    return redirect(
        f"/orgs/{quote(answer['org_slug'], safe='')}",
        flash=f"Welcome to {answer['org_name']}: you joined as {answer['role']}.",
    )


@page_post("/invite/{token:str}/accept")
async def invite_accept(request: AnyRequest, token: FromPath[str], data: Form) -> Response[Any]:
    try:
        answer = await _api(request, data).post("/invitations/accept", {"token": token})
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await _accept_page(request, token, status=exc.status, error=exc.detail)
    return _joined(answer)


@page_post("/invite/{token:str}/register")
async def invite_register(request: AnyRequest, token: FromPath[str], data: Form) -> Response[Any]:
    name, password = text(data, "name"), data.get("password", "")
    if password != data.get("password2", ""):
        return await _accept_page(
            request,
            token,
            status=422,
            name=name,
            errors={"password2": "the two passwords differ; type the same one twice"},
        )
    body: dict[str, Any] = {"token": token, "password": password}
    if name:
        body["name"] = name
    api = Api.of(request)
    try:
        answer = await api.post("/invitations/register", body)
    except ApiError as exc:
        fields, general = form_errors(exc, ("name", "password"))
        return await _accept_page(
            request, token, status=exc.status, name=name, errors=fields, error=general
        )
    # Signed in at once with what was just typed (the API sets the session cookies).
    try:
        await api.post("/auth/login", {"email": answer["email"], "password": password})
    except ApiError:
        return redirect("/login", flash="Your account is ready: sign in.")
    return _joined(answer)


# API keys ------------------------------------------------------------------------------


async def _keys_page(
    request: AnyRequest,
    org: str,
    *,
    status: int = 200,
    issued: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    cursor: str | None = None,
) -> Response[str]:
    current = await _org(request, org)
    listing = await Api.of(request).get(f"{_base(org)}/api-keys", {"cursor": cursor, "limit": 100})
    return await page(
        request,
        "org_admin/api_keys.html",
        status=status,
        current=current,
        keys=listing["items"],
        next_cursor=listing.get("next_cursor"),
        cursor=cursor,
        scopes=SCOPES,
        issued=issued,
        form=form or {"name": "", "scopes": ["read"], "expires_in_days": "90"},
        field_errors=errors or {},
        error=error,
        section="api-keys",
    )


@page_get("/orgs/{org:str}/api-keys")
async def api_keys_page(
    request: AnyRequest, org: FromPath[str], cursor: FromQuery[str | None] = None
) -> Response[Any]:
    return await _keys_page(request, org, cursor=cursor)


def _values(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str)]


@page_post("/orgs/{org:str}/api-keys")
async def api_key_create(request: AnyRequest, org: FromPath[str], data: MultiForm) -> Response[Any]:
    name = text(data, "name")
    scopes = _values(data, "scopes")
    days = text(data, "expires_in_days")
    form = {"name": name, "scopes": scopes, "expires_in_days": days}
    body: dict[str, Any] = {"name": name, "scopes": scopes}
    if days:
        # A number goes as one; anything else as typed, for the API to name the rule.
        body["expires_in_days"] = int(days) if days.isdigit() and len(days) < 9 else days
    try:
        issued = await _api(request, data).post(f"{_base(org)}/api-keys", body)
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        fields, general = form_errors(exc, ("name", "scopes", "expires_in_days"))
        return await _keys_page(
            request, org, status=exc.status, form=form, errors=fields, error=general
        )
    # The key itself is on this answer only: the API never returns it again.
    return await _keys_page(request, org, status=201, issued=issued)


@page_post("/orgs/{org:str}/api-keys/{key_id:int}/revoke")
async def api_key_revoke(
    request: AnyRequest, org: FromPath[str], key_id: FromPath[int], data: Form
) -> Response[Any]:
    if not confirmed(data):
        return await ask_confirmation(
            request,
            data,
            message="Revoke this API key? Whatever uses it is refused from now on.",
            label="Revoke key",
            back=f"{_base(org)}/api-keys",
        )
    await _api(request, data).delete(f"{_base(org)}/api-keys/{key_id}")
    return redirect(f"{_base(org)}/api-keys", flash="The API key was revoked.")


# Audit log -----------------------------------------------------------------------------


def _until_exclusive(value: str) -> str:
    """The form asks for the last day to include; the API's ``until`` excludes."""
    if _DATE.fullmatch(value):
        try:
            return (dt.date.fromisoformat(value) + dt.timedelta(days=1)).isoformat()
        except ValueError:
            return value
    return value


@page_get("/orgs/{org:str}/audit")
async def audit_page(
    request: AnyRequest,
    org: FromPath[str],
    action: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    outcome: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[Any]:
    current = await _org(request, org)
    filters = {
        "action": (action or "").strip(),
        "actor": (actor or "").strip(),
        "outcome": (outcome or "").strip(),
        "since": (since or "").strip(),
        "until": (until or "").strip(),
    }
    query = {**filters, "until": _until_exclusive(filters["until"])}
    error = None
    errors: dict[str, str] = {}
    status = 200
    try:
        listing = await Api.of(request).get(
            f"{_base(org)}/audit", {**query, "cursor": cursor, "limit": 50}
        )
    except ApiError as exc:
        if exc.status in (401, 403, 404):
            raise
        status = exc.status
        errors, error = form_errors(exc, tuple(filters))
        listing = {"items": [], "next_cursor": None}
    kept = {k: v for k, v in filters.items() if v}
    next_cursor = listing.get("next_cursor")
    return await page(
        request,
        "org_admin/audit.html",
        status=status,
        current=current,
        entries=listing["items"],
        filters=filters,
        outcomes=OUTCOMES,
        filtered=bool(kept),
        first_url=f"{_base(org)}/audit" + (f"?{urlencode(kept)}" if kept else ""),
        next_url=(
            f"{_base(org)}/audit?{urlencode({**kept, 'cursor': next_cursor})}"
            if next_cursor
            else None
        ),
        cursor=cursor,
        field_errors=errors,
        error=error,
        section="audit",
    )


ROUTES: list[Any] = [
    members_page,
    member_role,
    member_remove,
    org_leave,
    invitations_page,
    invitation_create,
    invitation_revoke,
    invite_page,
    invite_page_by_query,
    invite_accept,
    invite_register,
    api_keys_page,
    api_key_create,
    api_key_revoke,
    audit_page,
]
