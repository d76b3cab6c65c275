"""Events of organizations, members and invitations.

They carry identifiers and facts only: never an invitation token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gakwaya_sdk.events import Event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gakwaya.kernel import Kernel


class OrgCreated(Event, tag="org.created"):
    slug: str
    name: str
    created_by: int | None = None


class OrgUpdated(Event, tag="org.updated"):
    name: str
    updated_by: int | None = None


class OrgDeleted(Event, tag="org.deleted"):
    slug: str
    deleted_by: int | None = None


class MemberAdded(Event, tag="member.added"):
    user_id: int
    role: str
    #: "created" (founder of the org), "invitation", "cli" or "testing" (the
    #: ``gakwaya_org`` fixtures of :mod:`gakwaya.testing`).
    via: str


class MemberRoleChanged(Event, tag="member.role_changed"):
    user_id: int
    old_role: str
    new_role: str
    changed_by: int | None = None


class MemberRemoved(Event, tag="member.removed"):
    user_id: int
    role: str
    #: "removed" by someone else, or "left".
    reason: str
    removed_by: int | None = None


class InvitationCreated(Event, tag="invitation.created"):
    invitation_id: int
    email: str
    role: str
    expires_at: str
    invited_by: int | None = None


class InvitationAccepted(Event, tag="invitation.accepted"):
    invitation_id: int
    user_id: int
    role: str
    #: True when the invitation created the account (the register flow).
    new_account: bool = False


class InvitationRevoked(Event, tag="invitation.revoked"):
    invitation_id: int
    email: str
    #: "revoked" by a member, or "replaced" by a newer invitation for the same email.
    reason: str
    revoked_by: int | None = None


EVENT_TYPES: list[type[Event]] = [
    OrgCreated,
    OrgUpdated,
    OrgDeleted,
    MemberAdded,
    MemberRoleChanged,
    MemberRemoved,
    InvitationCreated,
    InvitationAccepted,
    InvitationRevoked,
]


def publish_all(kernel: Kernel, events: Iterable[Event]) -> None:
    """Publish events collected by a service call; call it after the commit."""
    for event in events:
        kernel.events.publish(event)


def commit_and_publish(db: Session, kernel: Kernel, events: Iterable[Event]) -> None:
    """Commit the service call's changes, then publish the events it collected, so
    subscribers never see an event for a change that was rolled back."""
    db.commit()
    publish_all(kernel, events)
