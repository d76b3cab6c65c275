"""Domains of apps: the names a proxy serves them on, their ownership proof and the
state of their certificates.

A name is **active** once ``verified_at`` is set: a custom domain when its TXT record
was seen, a default domain (``<app>-<env>.<proxy_base_domain>``) at creation. An
active name exists once in the whole installation (the partial unique index below,
besides the check the services make under a lock, which also covers the www/apex
name a redirect claims); a pending one may be added by several organizations, and
the first to prove it wins.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gakwaya.db.base import Base, UTCDateTime, utcnow


class Domain(Base):
    __tablename__ = "domains"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        Index(
            "uq_domains_active_name",
            "name",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    # IDNA ASCII, lower case (gakwaya_sdk.domains.check_domain); "*." only for wildcards.
    name: Mapped[str] = mapped_column(String(255))
    # "default" (given by the panel under proxy_base_domain) or "custom".
    kind: Mapped[str] = mapped_column(String(8), default="custom")
    # The value of the TXT record _gakwaya-challenge.<name> proving ownership ("" for
    # a default domain).
    token: Mapped[str] = mapped_column(String(64), default="")
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Last automatic or requested TXT lookup, and what it found when it failed.
    verify_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    verify_error: Mapped[str] = mapped_column(Text, default="")
    https_redirect: Mapped[bool] = mapped_column(Boolean, default=True)
    # "none", "www_to_apex" (www.<name> redirects here) or "apex_to_www".
    redirect: Mapped[str] = mapped_column(String(16), default="none")
    max_body_mb: Mapped[int | None] = mapped_column(Integer, default=None)
    timeout_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # Certificate, as the certs provider last reported it: pending, issued or failed.
    cert_state: Mapped[str] = mapped_column(String(16), default="pending")
    cert_not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    cert_issuer: Mapped[str] = mapped_column(String(500), default="")
    cert_reason: Mapped[str] = mapped_column(Text, default="")
    cert_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The not_after a certificate.expiring event was sent for (once per certificate).
    cert_warned_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
