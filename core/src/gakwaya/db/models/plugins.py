"""Per-installation plugin state: enabled or disabled by an operator."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from gakwaya.db.base import Base, UTCDateTime, utcnow


class PluginState(Base):
    """A row exists once an operator enabled or disabled a plugin; no row: enabled."""

    __tablename__ = "plugin_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Who changed it: a user's email, or ``cli`` for the command line.
    changed_by: Mapped[str] = mapped_column(String(320), default="")
