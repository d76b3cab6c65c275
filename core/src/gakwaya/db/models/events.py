"""Stored domain events: the source for live streams that resume from an id."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gakwaya.db.base import Base, UTCDateTime, utcnow


class StoredEvent(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    type: Mapped[str] = mapped_column(String(100), index=True)
    org_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The process that published it, so its Redis echo is not delivered twice.
    origin: Mapped[str] = mapped_column(String(100), default="")
