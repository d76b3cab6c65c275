"""Organizations, members and invitations: the rules, shared by the API and the CLI.

Functions take a SQLAlchemy session and append the events they cause to ``events``;
the caller commits and then publishes them (:func:`gakwaya.orgs.events.publish_all`).

The rules on roles, in one place:

- nobody grants a role above their own (by role change or by invitation);
- nobody changes or removes a member whose role is above their own (an admin
  cannot touch an owner); members of the same rank may manage each other;
- an organization always keeps at least one owner: the last owner cannot be
  demoted, removed or leave.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gakwaya.apikeys.services import revoke_member_keys
from gakwaya.db.base import utcnow
from gakwaya.db.models import Invitation, Membership, Organization, User
from gakwaya.errors import Conflict, FieldError, Gone, NotFound, PermissionDenied
from gakwaya.orgs import events as ev
from gakwaya.orgs.scoped import find_in_org, get_in_org, in_org
from gakwaya.pagination import next_cursor
from gakwaya.security.tokens import digest, new_token
from gakwaya_sdk.events import Event
from gakwaya_sdk.permissions import Role

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

INVITATION_TTL = dt.timedelta(days=7)

LAST_OWNER = (
    "user {user_id} is the last owner of this organization; promote another member to owner first"
)


class FieldConflict(FieldError):
    """A value that is valid but already taken: a 409 that still names the field."""

    status_code = 409
    title = "Conflict"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _email_is(email: str) -> ColumnElement[bool]:
    return func.lower(User.email) == normalize_email(email)


# Organizations -------------------------------------------------------------------------


def find_user_by_email(db: Session, email: str) -> User | None:
    return db.scalars(select(User).where(_email_is(email))).first()


def create_org(
    db: Session, *, slug: str, name: str, owner_id: int, events: list[Event]
) -> Organization:
    """Create an organization with ``owner_id`` as its first owner."""
    taken = FieldConflict("slug", f"{slug!r} is taken by another organization; choose another")
    if db.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise taken
    org = Organization(slug=slug, name=name)
    db.add(org)
    try:
        db.flush()
    except IntegrityError:  # created by someone else a moment ago
        raise taken from None
    db.add(Membership(org_id=org.id, user_id=owner_id, role=Role.OWNER.value))
    db.flush()
    events.append(ev.OrgCreated(org_id=org.id, slug=org.slug, name=org.name, created_by=owner_id))
    events.append(
        ev.MemberAdded(org_id=org.id, user_id=owner_id, role=Role.OWNER.value, via="created")
    )
    return org


def get_org_by_slug(db: Session, slug: str) -> Organization:
    org = db.scalars(select(Organization).where(Organization.slug == slug)).first()
    if org is None:
        raise NotFound(f"organization {slug!r} not found")
    return org


def list_user_orgs(
    db: Session,
    user_id: int,
    *,
    only_org_id: int | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[tuple[Organization, Role]], str | None]:
    """The organizations ``user_id`` belongs to with their role, newest first."""
    query = (
        select(Organization, Membership.role)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == user_id)
    )
    if only_org_id is not None:
        query = query.where(Organization.id == only_org_id)
    if cursor is not None:
        query = query.where(Organization.id < cursor)
    rows = db.execute(query.order_by(Organization.id.desc()).limit(limit + 1)).all()
    return (
        [(org, Role(role)) for org, role in rows[:limit]],
        next_cursor([org.id for org, _ in rows], limit),
    )


def list_all_orgs(db: Session) -> list[tuple[Organization, int, list[str]]]:
    """Every organization with its member count and owners' emails (operator view)."""
    out = []
    for org in db.scalars(select(Organization).order_by(Organization.id)).all():
        count = db.scalar(
            select(func.count()).select_from(Membership).where(Membership.org_id == org.id)
        )
        owners = db.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org.id, Membership.role == Role.OWNER.value)
            .order_by(User.email)
        ).all()
        out.append((org, int(count or 0), list(owners)))
    return out


def update_org(
    db: Session, *, org_id: int, name: str, actor_id: int | None, events: list[Event]
) -> Organization:
    org = db.get(Organization, org_id)
    if org is None:
        raise NotFound("organization not found")
    if org.name != name:
        org.name = name
        events.append(ev.OrgUpdated(org_id=org.id, name=name, updated_by=actor_id))
    return org


def delete_org(
    db: Session, *, org_id: int, confirm: str | None, actor_id: int | None, events: list[Event]
) -> Organization:
    """Delete the organization and, by cascade, its members, invitations and keys."""
    org = db.get(Organization, org_id)
    if org is None:
        raise NotFound("organization not found")
    if confirm is None or confirm != org.slug:
        raise FieldError("confirm", "must repeat the organization's slug to confirm its deletion")
    db.delete(org)
    db.flush()
    events.append(ev.OrgDeleted(org_id=org_id, slug=org.slug, deleted_by=actor_id))
    return org


# Members -----------------------------------------------------------------------------------


def list_members(
    db: Session, org_id: int, *, cursor: int | None = None, limit: int = 50
) -> tuple[list[Any], str | None]:
    """One page of members, newest first: rows of (id, role, created_at, user_id,
    email, name). Columns, not entities: lists are the API's hottest reads."""
    query = (
        select(
            Membership.id,
            Membership.role,
            Membership.created_at,
            User.id.label("user_id"),
            User.email,
            User.name,
        )
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
    )
    if cursor is not None:
        query = query.where(Membership.id < cursor)
    rows = db.execute(query.order_by(Membership.id.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), next_cursor([r.id for r in rows], limit)


def get_member(db: Session, org_id: int, user_id: int, *, for_update: bool = False) -> Membership:
    return get_in_org(
        db,
        Membership,
        user_id,
        org_id,
        what="member",
        column=Membership.user_id,
        for_update=for_update,
    )


def find_member(db: Session, org_id: int, user_id: int) -> Membership | None:
    return find_in_org(db, Membership, user_id, org_id, column=Membership.user_id)


def _lock_org(db: Session, org_id: int) -> None:
    """Serialize owner changes of one organization (PostgreSQL; SQLite writers already are)."""
    db.execute(select(Organization.id).where(Organization.id == org_id).with_for_update())


def _ensure_another_owner(db: Session, org_id: int, user_id: int) -> None:
    _lock_org(db, org_id)
    owners = db.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.org_id == org_id, Membership.role == Role.OWNER.value)
    )
    if not owners or owners <= 1:
        raise Conflict(LAST_OWNER.format(user_id=user_id))


def _not_above(actor_role: Role, target_role: Role, what: str) -> None:
    if target_role.rank > actor_role.rank:
        raise PermissionDenied(
            f"{what}: the member's role {target_role.value!r} is above your role "
            f"{actor_role.value!r}; ask an {target_role.value} to do it"
        )


def _may_grant(actor_role: Role, role: Role) -> None:
    if role.rank > actor_role.rank:
        raise PermissionDenied(
            f"role: you cannot grant {role.value!r}, which is above your own role "
            f"{actor_role.value!r}"
        )


def change_role(
    db: Session,
    *,
    org_id: int,
    target_user_id: int,
    role: Role,
    actor_id: int | None,
    actor_role: Role,
    events: list[Event],
) -> tuple[Membership, User]:
    member = get_member(db, org_id, target_user_id, for_update=True)
    old = Role(member.role)
    _may_grant(actor_role, role)
    _not_above(actor_role, old, "role")
    if old is not role:
        if old is Role.OWNER:
            _ensure_another_owner(db, org_id, target_user_id)
        member.role = role.value
        db.flush()
        events.append(
            ev.MemberRoleChanged(
                org_id=org_id,
                user_id=target_user_id,
                old_role=old.value,
                new_role=role.value,
                changed_by=actor_id,
            )
        )
    user = db.get(User, member.user_id)
    assert user is not None
    return member, user


def remove_member(
    db: Session,
    *,
    org_id: int,
    target_user_id: int,
    actor_id: int | None,
    actor_role: Role,
    events: list[Event],
    reason: str = "removed",
) -> Membership:
    """Remove a member (``reason="left"`` when they leave) and revoke their keys here.

    Revoking the keys matters although the middleware already refuses a key whose
    user is no longer a member: a key must not come back to life if they rejoin.
    """
    member = get_member(db, org_id, target_user_id, for_update=True)
    role = Role(member.role)
    if reason != "left":
        _not_above(actor_role, role, "user_id")
    if role is Role.OWNER:
        _ensure_another_owner(db, org_id, target_user_id)
    revoke_member_keys(db, org_id=org_id, user_id=target_user_id, actor_id=actor_id, events=events)
    db.delete(member)
    db.flush()
    events.append(
        ev.MemberRemoved(
            org_id=org_id,
            user_id=target_user_id,
            role=role.value,
            reason=reason,
            removed_by=actor_id,
        )
    )
    return member


# Invitations ---------------------------------------------------------------------------------


def invitation_status(inv: Invitation, now: dt.datetime | None = None) -> str:
    if inv.accepted_at is not None:
        return "accepted"
    if inv.revoked_at is not None:
        return "revoked"
    if inv.expires_at <= (now or utcnow()):
        return "expired"
    return "pending"


def invitation_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/invitations/accept?token={token}"


def create_invitation(
    db: Session,
    *,
    org_id: int,
    email: str,
    role: Role,
    inviter_id: int | None,
    inviter_role: Role,
    events: list[Event],
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role``; returns the invitation and its one-time token.

    A pending invitation for the same address is replaced (revoked), so only the
    newest link works.
    """
    _may_grant(inviter_role, role)
    email = normalize_email(email)
    member = db.scalar(
        in_org(Membership, org_id).join(User, User.id == Membership.user_id).where(_email_is(email))
    )
    if member is not None:
        raise FieldConflict("email", f"{email} is already a member of this organization")
    now = utcnow()
    pending = db.scalars(
        in_org(Invitation, org_id).where(
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    ).all()
    for old in pending:
        old.revoked_at = now
        events.append(
            ev.InvitationRevoked(
                org_id=org_id,
                invitation_id=old.id,
                email=email,
                reason="replaced",
                revoked_by=inviter_id,
            )
        )
    token = new_token()
    inv = Invitation(
        org_id=org_id,
        email=email,
        role=role.value,
        token_hash=digest(token),
        invited_by_id=inviter_id,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    db.add(inv)
    db.flush()
    events.append(
        ev.InvitationCreated(
            org_id=org_id,
            invitation_id=inv.id,
            email=email,
            role=role.value,
            expires_at=inv.expires_at.isoformat(),
            invited_by=inviter_id,
        )
    )
    return inv, token


def list_invitations(
    db: Session,
    org_id: int,
    *,
    pending_only: bool = True,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[tuple[Invitation, str | None]], str | None]:
    query = (
        in_org(Invitation, org_id)
        .add_columns(User.email)
        .outerjoin(User, User.id == Invitation.invited_by_id)
    )
    if pending_only:
        query = query.where(
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    if cursor is not None:
        query = query.where(Invitation.id < cursor)
    rows = db.execute(query.order_by(Invitation.id.desc()).limit(limit + 1)).all()
    return (
        [(inv, inviter) for inv, inviter in rows[:limit]],
        next_cursor([inv.id for inv, _ in rows], limit),
    )


def inviter_email(db: Session, inv: Invitation) -> str | None:
    if inv.invited_by_id is None:
        return None
    return db.scalar(select(User.email).where(User.id == inv.invited_by_id))


def revoke_invitation(
    db: Session, *, org_id: int, invitation_id: int, actor_id: int | None, events: list[Event]
) -> Invitation:
    inv = get_in_org(db, Invitation, invitation_id, org_id, what="invitation", for_update=True)
    if inv.accepted_at is not None:
        raise Conflict(
            f"invitation {invitation_id} was already accepted; remove the member instead"
        )
    if inv.revoked_at is None:
        inv.revoked_at = utcnow()
        db.flush()
        events.append(
            ev.InvitationRevoked(
                org_id=org_id,
                invitation_id=inv.id,
                email=inv.email,
                reason="revoked",
                revoked_by=actor_id,
            )
        )
    return inv


def _usable_invitation(db: Session, token: str, *, lock: bool = True) -> Invitation:
    query = select(Invitation).where(Invitation.token_hash == digest(token))
    inv = db.scalars(query.with_for_update() if lock else query).first()
    if inv is None:
        raise NotFound("invitation not found: the link is wrong or incomplete")
    status = invitation_status(inv)
    if status == "accepted":
        raise Gone("this invitation has already been used")
    if status == "revoked":
        raise Gone("this invitation was revoked or replaced by a newer one; ask for a new one")
    if status == "expired":
        raise Gone("this invitation has expired; ask a member of the organization for a new one")
    return inv


@dataclass
class Acceptance:
    invitation: Invitation
    org: Organization
    user: User


def _join(
    db: Session, inv: Invitation, user: User, events: list[Event], *, new: bool
) -> Acceptance:
    org = db.get(Organization, inv.org_id)
    assert org is not None  # the invitation cascades away with its organization
    already = db.scalar(
        select(Membership.id).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if already is not None:
        raise Conflict("you are already a member of this organization")
    db.add(Membership(org_id=org.id, user_id=user.id, role=inv.role))
    inv.accepted_at = utcnow()
    db.flush()
    events.append(ev.MemberAdded(org_id=org.id, user_id=user.id, role=inv.role, via="invitation"))
    events.append(
        ev.InvitationAccepted(
            org_id=org.id, invitation_id=inv.id, user_id=user.id, role=inv.role, new_account=new
        )
    )
    return Acceptance(invitation=inv, org=org, user=user)


@dataclass
class Preview:
    invitation: Invitation
    org: Organization
    invited_by: User | None


def preview_invitation(db: Session, *, token: str) -> Preview:
    """The usable invitation behind ``token``, with its organization and inviter
    (404 for an unknown token, 410 for a used, revoked or expired one, as accepting)."""
    inv = _usable_invitation(db, token, lock=False)
    org = db.get(Organization, inv.org_id)
    assert org is not None  # the invitation cascades away with its organization
    inviter = db.get(User, inv.invited_by_id) if inv.invited_by_id is not None else None
    return Preview(invitation=inv, org=org, invited_by=inviter)


def accept_invitation(db: Session, *, token: str, user_id: int, events: list[Event]) -> Acceptance:
    """A signed-in user accepts an invitation sent to their own email address."""
    inv = _usable_invitation(db, token)
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    if normalize_email(user.email) != normalize_email(inv.email):
        raise PermissionDenied(
            "this invitation was sent to another email address; sign in with the account "
            "of that address to accept it"
        )
    return _join(db, inv, user, events, new=False)


def register_from_invitation(
    db: Session,
    kernel: Kernel,
    *,
    token: str,
    password: str,
    name: str | None,
    events: list[Event],
) -> Acceptance:
    """Create the account of an invited person who has none, and the membership.

    The account gets the invitation's address: the token proves it received the mail.
    """
    from gakwaya.identity.services import create_user

    inv = _usable_invitation(db, token)
    if find_user_by_email(db, inv.email) is not None:
        raise Conflict(
            "an account with this invitation's email address already exists; sign in and "
            "accept the invitation instead"
        )
    user = create_user(db, kernel, email=inv.email, password=password, name=name)
    return _join(db, inv, user, events, new=True)
