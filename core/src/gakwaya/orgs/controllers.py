"""HTTP routes of organizations, members and invitations.

Thin: the middleware has already resolved the caller, the organization (404 for
non-members) and the permission; handlers decode, call a service, commit, then
publish the events the service collected.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext, Principal, set_audit_target, state_of
from gakwaya.db.models import Invitation, Membership, Organization, User
from gakwaya.kernel import Kernel
from gakwaya.orgs import services
from gakwaya.orgs.events import commit_and_publish
from gakwaya.orgs.schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationIssued,
    InvitationPreview,
    InvitationRegister,
    InvitationView,
    Joined,
    MemberUpdate,
    MemberView,
    OrgCreate,
    OrgDeleteConfirm,
    OrgUpdate,
    OrgView,
)
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page, parse_cursor
from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Role

API = "/api/v1"
ORG = f"{API}/orgs/{{org:str}}"
AnyRequest = Request[Any, Any, Any]


def _org_view(org: Organization, role: Role) -> OrgView:
    return OrgView(id=org.id, slug=org.slug, name=org.name, role=role, created_at=org.created_at)


def _member_view(m: Membership, u: User) -> MemberView:
    return MemberView(
        user_id=u.id, email=u.email, name=u.name, role=Role(m.role), joined_at=m.created_at
    )


def _invitation_view(
    inv: Invitation, inviter: str | None, now: dt.datetime | None = None
) -> InvitationView:
    return InvitationView(
        id=inv.id,
        email=inv.email,
        role=Role(inv.role),
        status=services.invitation_status(inv, now),
        invited_by_email=inviter,
        created_at=inv.created_at,
        expires_at=inv.expires_at,
        accepted_at=inv.accepted_at,
        revoked_at=inv.revoked_at,
    )


# Organizations -----------------------------------------------------------------------------


@post(
    f"{API}/orgs", operation_id="orgs_create", tags=["orgs"], sync_to_thread=True, status_code=201
)
def orgs_create(
    request: AnyRequest,
    data: JSONBody[OrgCreate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
) -> OrgView:
    """Create an organization; the caller becomes its owner. Sign-in only (no API keys)."""
    events: list[Event] = []
    org = services.create_org(
        db, slug=data.slug, name=data.name, owner_id=principal.user_id, events=events
    )
    commit_and_publish(db, kernel, events)
    state_of(request)["audit_org_id"] = org.id
    set_audit_target(request, "org", org.id, slug=org.slug)
    return _org_view(org, Role.OWNER)


@get(
    f"{API}/orgs",
    operation_id="orgs_list",
    tags=["orgs"],
    sync_to_thread=True,
    opt={"scope": "read"},
)
def orgs_list(
    db: NamedDependency[Session],
    principal: NamedDependency[Principal],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[OrgView]:
    """The caller's organizations with their role; with an API key, only the key's."""
    only = principal.api_key_org_id if principal.via == "api_key" else None
    if principal.via == "api_key" and only is None:
        return Page(items=[])
    rows, nxt = services.list_user_orgs(
        db, principal.user_id, only_org_id=only, cursor=parse_cursor(cursor), limit=limit
    )
    return Page(items=[_org_view(o, r) for o, r in rows], next_cursor=nxt)


@get(
    ORG,
    operation_id="orgs_show",
    tags=["orgs"],
    sync_to_thread=True,
    opt={"permission": "org.read"},
)
def orgs_show(db: NamedDependency[Session], current_org: NamedDependency[OrgContext]) -> OrgView:
    org = db.get(Organization, current_org.id)
    assert org is not None
    return _org_view(org, current_org.role)


@patch(
    ORG,
    operation_id="orgs_update",
    tags=["orgs"],
    sync_to_thread=True,
    opt={"permission": "org.update"},
)
def orgs_update(
    request: AnyRequest,
    data: JSONBody[OrgUpdate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> OrgView:
    """Rename the organization (the slug never changes: it is in every URL)."""
    events: list[Event] = []
    org = services.update_org(
        db, org_id=current_org.id, name=data.name, actor_id=principal.user_id, events=events
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "org", org.id, name=org.name)
    return _org_view(org, current_org.role)


@delete(
    ORG,
    operation_id="orgs_delete",
    tags=["orgs"],
    sync_to_thread=True,
    opt={"permission": "org.delete"},
)
def orgs_delete(
    request: AnyRequest,
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
    data: JSONBody[OrgDeleteConfirm | None] = None,
    confirm: FromQuery[str | None] = None,
) -> None:
    """Delete the organization with its members, invitations and API keys.

    Confirm by repeating its slug, as ``{"confirm": "<slug>"}`` or ``?confirm=<slug>``.
    """
    events: list[Event] = []
    typed = data.confirm if data is not None else confirm
    services.delete_org(
        db, org_id=current_org.id, confirm=typed, actor_id=principal.user_id, events=events
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "org", current_org.id, slug=current_org.slug)


@post(
    f"{ORG}/leave",
    operation_id="orgs_leave",
    tags=["orgs"],
    sync_to_thread=True,
    status_code=204,
    opt={"permission": "org.read"},
)
def orgs_leave(
    request: AnyRequest,
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Leave the organization. The last owner cannot: promote another owner first.
    The caller's API keys in the organization are revoked."""
    events: list[Event] = []
    services.remove_member(
        db,
        org_id=current_org.id,
        target_user_id=principal.user_id,
        actor_id=principal.user_id,
        actor_role=current_org.role,
        events=events,
        reason="left",
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "member", principal.user_id, role=current_org.role.value)


# Members -------------------------------------------------------------------------------------


@get(
    f"{ORG}/members",
    operation_id="members_list",
    tags=["members"],
    sync_to_thread=True,
    opt={"permission": "members.read"},
)
def members_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[MemberView]:
    rows, nxt = services.list_members(db, current_org.id, cursor=parse_cursor(cursor), limit=limit)
    return Page(
        items=[
            MemberView(
                user_id=r.user_id,
                email=r.email,
                name=r.name,
                role=Role(r.role),
                joined_at=r.created_at,
            )
            for r in rows
        ],
        next_cursor=nxt,
    )


@patch(
    f"{ORG}/members/{{user_id:int}}",
    operation_id="members_update",
    tags=["members"],
    sync_to_thread=True,
    opt={"permission": "members.manage"},
)
def members_update(
    request: AnyRequest,
    user_id: FromPath[int],
    data: JSONBody[MemberUpdate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> MemberView:
    """Change a member's role: never above your own, never for someone above you,
    and never the last owner's."""
    set_audit_target(request, "member", user_id, role=data.role.value)
    events: list[Event] = []
    member, user = services.change_role(
        db,
        org_id=current_org.id,
        target_user_id=user_id,
        role=data.role,
        actor_id=principal.user_id,
        actor_role=current_org.role,
        events=events,
    )
    commit_and_publish(db, kernel, events)
    return _member_view(member, user)


@delete(
    f"{ORG}/members/{{user_id:int}}",
    operation_id="members_remove",
    tags=["members"],
    sync_to_thread=True,
    opt={"permission": "members.manage"},
)
def members_remove(
    request: AnyRequest,
    user_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> None:
    """Remove a member (not one above you, not the last owner); their keys here are revoked."""
    set_audit_target(request, "member", user_id)
    events: list[Event] = []
    member = services.remove_member(
        db,
        org_id=current_org.id,
        target_user_id=user_id,
        actor_id=principal.user_id,
        actor_role=current_org.role,
        events=events,
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "member", user_id, role=member.role)


# Invitations ---------------------------------------------------------------------------------


@post(
    f"{ORG}/invitations",
    operation_id="invitations_create",
    tags=["invitations"],
    sync_to_thread=True,
    status_code=201,
    opt={"permission": "invitations.manage"},
)
def invitations_create(
    request: AnyRequest,
    data: JSONBody[InvitationCreate],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> InvitationIssued:
    """Invite someone by email with a role no higher than yours. The answer holds the
    one-time token and link (valid 7 days); they are not shown again."""
    set_audit_target(request, "invitation", "", email=data.email.lower(), role=data.role.value)
    events: list[Event] = []
    inv, token = services.create_invitation(
        db,
        org_id=current_org.id,
        email=data.email,
        role=data.role,
        inviter_id=principal.user_id,
        inviter_role=current_org.role,
        events=events,
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "invitation", inv.id)
    view = _invitation_view(inv, principal.email)
    return InvitationIssued(
        **msgspec.structs.asdict(view),
        token=token,
        accept_url=services.invitation_url(kernel.settings.effective_base_url, token),
    )


@get(
    f"{ORG}/invitations",
    operation_id="invitations_list",
    tags=["invitations"],
    sync_to_thread=True,
    opt={"permission": "invitations.read"},
)
def invitations_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    status: FromQuery[Literal["pending", "all"]] = "pending",
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[InvitationView]:
    """Pending invitations (``status=all``: also accepted, revoked and expired ones)."""
    rows, nxt = services.list_invitations(
        db,
        current_org.id,
        pending_only=status == "pending",
        cursor=parse_cursor(cursor),
        limit=limit,
    )
    return Page(items=[_invitation_view(i, e) for i, e in rows], next_cursor=nxt)


@delete(
    f"{ORG}/invitations/{{invitation_id:int}}",
    operation_id="invitations_revoke",
    tags=["invitations"],
    sync_to_thread=True,
    opt={"permission": "invitations.manage"},
)
def invitations_revoke(
    request: AnyRequest,
    invitation_id: FromPath[int],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
    current_org: NamedDependency[OrgContext],
) -> None:
    set_audit_target(request, "invitation", invitation_id)
    events: list[Event] = []
    inv = services.revoke_invitation(
        db,
        org_id=current_org.id,
        invitation_id=invitation_id,
        actor_id=principal.user_id,
        events=events,
    )
    commit_and_publish(db, kernel, events)
    set_audit_target(request, "invitation", invitation_id, email=inv.email)


def _joined(acc: services.Acceptance) -> Joined:
    return Joined(
        user_id=acc.user.id,
        email=acc.user.email,
        org_id=acc.org.id,
        org_slug=acc.org.slug,
        org_name=acc.org.name,
        role=Role(acc.invitation.role),
    )


@post(
    f"{API}/invitations/accept",
    operation_id="invitations_accept",
    tags=["invitations"],
    sync_to_thread=True,
    status_code=200,
)
def invitations_accept(
    request: AnyRequest,
    data: JSONBody[InvitationAccept],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
    principal: NamedDependency[Principal],
) -> Joined:
    """Accept an invitation sent to the signed-in user's email address (no API keys)."""
    events: list[Event] = []
    acc = services.accept_invitation(db, token=data.token, user_id=principal.user_id, events=events)
    commit_and_publish(db, kernel, events)
    state_of(request)["audit_org_id"] = acc.org.id
    set_audit_target(request, "invitation", acc.invitation.id, role=acc.invitation.role)
    return _joined(acc)


@post(
    f"{API}/invitations/preview",
    operation_id="invitations_preview",
    tags=["invitations"],
    sync_to_thread=True,
    status_code=200,
    opt={"public": True, "audit": False},
)
def invitations_preview(
    data: JSONBody[InvitationAccept],
    db: NamedDependency[Session],
) -> InvitationPreview:
    """What the invitation behind a token offers: the organization, the role, the
    address it was sent to. For the page the invited person opens, signed in or not;
    the token is in the body so that it stays out of access logs. 404 for an unknown
    token, 410 for one used, revoked or expired. Nothing changes."""
    found = services.preview_invitation(db, token=data.token)
    inv, inviter = found.invitation, found.invited_by
    return InvitationPreview(
        org_slug=found.org.slug,
        org_name=found.org.name,
        role=Role(inv.role),
        email=inv.email,
        invited_by=(inviter.name or inviter.email) if inviter is not None else None,
        expires_at=inv.expires_at,
    )


@post(
    f"{API}/invitations/register",
    operation_id="invitations_register",
    tags=["invitations"],
    sync_to_thread=True,
    status_code=201,
    opt={"public": True},
)
def invitations_register(
    request: AnyRequest,
    data: JSONBody[InvitationRegister],
    db: NamedDependency[Session],
    kernel: NamedDependency[Kernel],
) -> Joined:
    """Create the account of an invited person from the invitation's token, with a
    password, and join the organization. Then sign in as usual."""
    events: list[Event] = []
    acc = services.register_from_invitation(
        db, kernel, token=data.token, password=data.password, name=data.name, events=events
    )
    commit_and_publish(db, kernel, events)
    state = state_of(request)
    state["audit_actor"] = ("user", str(acc.user.id), acc.user.email)
    state["audit_org_id"] = acc.org.id
    set_audit_target(request, "invitation", acc.invitation.id, role=acc.invitation.role)
    return _joined(acc)


ROUTES = [
    orgs_create,
    orgs_list,
    orgs_show,
    orgs_update,
    orgs_delete,
    orgs_leave,
    members_list,
    members_update,
    members_remove,
    invitations_create,
    invitations_list,
    invitations_revoke,
    invitations_accept,
    invitations_preview,
    invitations_register,
]
