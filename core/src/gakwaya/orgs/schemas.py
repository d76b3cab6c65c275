"""Request and response bodies of organizations, members and invitations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from gakwaya_sdk.permissions import Role
from gakwaya_sdk.types import DisplayName, Email, Slug

#: An invitation token as sent in the accept link (``secrets.token_urlsafe(32)``).
Token = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=200, description="the token from the invitation link"),
]
Password = Annotated[str, msgspec.Meta(max_length=1024)]


class OrgCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    slug: Slug
    name: DisplayName


class OrgUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: DisplayName


class OrgDeleteConfirm(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: The organization's slug, typed again to confirm.
    confirm: str


class OrgView(msgspec.Struct, kw_only=True):
    id: int
    slug: str
    name: str
    #: The caller's role in this organization.
    role: Role
    created_at: dt.datetime


class MemberView(msgspec.Struct, kw_only=True):
    user_id: int
    email: str
    name: str
    role: Role
    joined_at: dt.datetime


class MemberUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role


class InvitationCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    role: Role


class InvitationView(msgspec.Struct, kw_only=True):
    id: int
    email: str
    role: Role
    #: pending, expired, accepted or revoked.
    status: str
    invited_by_email: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    accepted_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class InvitationIssued(InvitationView, kw_only=True):
    """A new invitation with its one-time token; the token is never shown again."""

    token: str
    accept_url: str


class InvitationAccept(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Token


class InvitationPreview(msgspec.Struct, kw_only=True):
    """What an invitation offers, for the person holding its link: the page they open
    says which organization, which role and which address before they join."""

    org_slug: str
    org_name: str
    role: Role
    #: The address the invitation was sent to: the account that may accept it.
    email: str
    #: Who sent it: their name, or their address when they gave none.
    invited_by: str | None
    expires_at: dt.datetime


class InvitationRegister(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Token
    password: Password
    name: DisplayName | None = None


class Joined(msgspec.Struct, kw_only=True):
    """The membership an accepted invitation created."""

    user_id: int
    email: str
    org_id: int
    org_slug: str
    org_name: str
    role: Role
