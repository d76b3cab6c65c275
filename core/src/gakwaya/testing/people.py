"""Users, organizations, sessions and API keys written straight into a test panel.

The fixtures build them here rather than through the API so a plugin's tests start
from a known world in a few milliseconds and spend their requests on the plugin's
own routes. What they create is exactly what signing in or ``POST .../api-keys``
would have stored, so the headers work on every route of the panel.

Kernel modules are imported inside the functions: importing this module (which the
pytest plugin does at pytest's start-up) must not load the kernel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

#: The password of every user the fixtures create; sign in with it to test a login flow.
PASSWORD = "correct horse battery staple 7"  # noqa: S105 (a test account's, by design)
#: Organization roles, highest first.
ROLES = ("owner", "admin", "developer", "viewer")
#: API key scopes, widest last (each implies the ones before it).
SCOPES = ("read", "deploy", "write", "admin")

Headers = dict[str, str]

# argon2id is slow on purpose; one hash of PASSWORD serves every user of a test session.
_password_hash: list[str] = []


def _hash() -> str:
    if not _password_hash:
        from gakwaya.security.passwords import hash_password

        _password_hash.append(hash_password(PASSWORD))
    return _password_hash[0]


@dataclass(frozen=True, kw_only=True)
class GakwayaUser:
    """A user of the test panel, signed in once."""

    id: int
    email: str
    #: Always :data:`PASSWORD`.
    password: str
    superuser: bool = False
    #: Request headers of a signed-in browser session (the cookie and the CSRF token,
    #: so writes pass too): ``client.get(url, headers=user.session)``.
    session: Headers = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class GakwayaOrg:
    """An organization with one member per role, their sessions, and API keys.

    ``sessions[role]`` and ``keys[scope]`` are request headers. Every key belongs
    to the owner (so its scope, not the owner's role, is what limits it) and is
    bound to this organization only: used on another organization's URL it gets 404.
    """

    id: int
    slug: str
    name: str
    #: By role: ``owner``, ``admin``, ``developer``, ``viewer``.
    users: dict[str, GakwayaUser]
    #: By role: the headers of that member's session.
    sessions: dict[str, Headers]
    #: By scope: ``read``, ``deploy``, ``write``, ``admin``: ``Authorization: Bearer gkw_…``.
    keys: dict[str, Headers]


def create_user(kernel: Kernel, email: str, *, superuser: bool = False) -> GakwayaUser:
    """A user with :data:`PASSWORD` and one active session."""
    from gakwaya.db.models import User

    with kernel.db.transaction() as db:
        user = User(
            email=email,
            name=email.split("@", 1)[0],
            password_hash=_hash(),
            is_superuser=superuser,
        )
        db.add(user)
        db.flush()
        user_id = user.id
    return GakwayaUser(
        id=user_id,
        email=email,
        password=PASSWORD,
        superuser=superuser,
        session=session_headers(kernel, user_id),
    )


def session_headers(kernel: Kernel, user_id: int) -> Headers:
    """Headers of a new browser session of ``user_id`` (as after a password sign-in)."""
    from gakwaya.db.base import utcnow
    from gakwaya.db.models import UserSession
    from gakwaya.security.tokens import digest, new_token

    token, csrf = new_token(), new_token()
    now = utcnow()
    with kernel.db.transaction() as db:
        db.add(
            UserSession(
                token_hash=digest(token),
                user_id=user_id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(hours=kernel.settings.session_ttl_hours),
            )
        )
    return {"Cookie": f"gakwaya_session={token}; gakwaya_csrf={csrf}", "X-CSRF-Token": csrf}


def api_key_headers(kernel: Kernel, *, org_id: int, user_id: int, scopes: list[str]) -> Headers:
    """Headers carrying a new API key of ``user_id``, bound to ``org_id``."""
    from gakwaya.apikeys import keys
    from gakwaya.db.models import ApiKey

    secret = keys.generate()
    with kernel.db.transaction() as db:
        db.add(
            ApiKey(
                org_id=org_id,
                user_id=user_id,
                name="gakwaya-testing",
                prefix=keys.display_prefix(secret),
                key_hash=keys.key_digest(secret),
                scopes=list(scopes),
            )
        )
    return {"Authorization": f"Bearer {secret}"}


def create_org(kernel: Kernel, slug: str, name: str | None = None) -> GakwayaOrg:
    """Organization ``slug`` with members ``<role>@<slug>.example.com`` and a key per scope.

    Created through the kernel's service, and a ``member.added`` event is published
    for each member, as in production: plugins' ``on_event`` see them."""
    from gakwaya.db.models import Membership
    from gakwaya.orgs import services
    from gakwaya.orgs.events import MemberAdded
    from gakwaya_sdk.events import Event

    users = {role: create_user(kernel, f"{role}@{slug}.example.com") for role in ROLES}
    name = name or slug.replace("-", " ").title()
    events: list[Event] = []
    with kernel.db.transaction() as db:
        org = services.create_org(
            db, slug=slug, name=name, owner_id=users["owner"].id, events=events
        )
        for role, user in users.items():
            if role != "owner":
                db.add(Membership(org_id=org.id, user_id=user.id, role=role))
                events.append(MemberAdded(org_id=org.id, user_id=user.id, role=role, via="testing"))
        org_id = org.id
    for event in events:
        kernel.events.publish(event)
    owner = users["owner"].id
    return GakwayaOrg(
        id=org_id,
        slug=slug,
        name=name,
        users=users,
        sessions={role: user.session for role, user in users.items()},
        keys={
            scope: api_key_headers(kernel, org_id=org_id, user_id=owner, scopes=[scope])
            for scope in SCOPES
        },
    )
