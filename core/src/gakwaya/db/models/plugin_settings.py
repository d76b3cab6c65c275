"""Values operators set for the settings plugins declare in their manifests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gakwaya.db.base import Base, UTCDateTime, utcnow


class PluginSetting(Base):
    """One stored value; no row means the manifest's default (or the installation's
    value, for an organization).

    A secret is kept only as ``ciphertext`` (the installation's key over the value's
    JSON); anything else as ``value`` (JSON text), so it stays readable in a dump.
    """

    __tablename__ = "plugin_settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin: Mapped[str] = mapped_column(String(200))
    #: ``None``: the installation-wide value.
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    #: The value as JSON, for settings that are not secret.
    value: Mapped[str | None] = mapped_column(Text, default=None)
    #: ``kernel.box.encrypt`` of the value's JSON, for secrets.
    ciphertext: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Who set it: a user's email, or ``cli``.
    updated_by: Mapped[str] = mapped_column(String(320), default="")


# SQL's NULL never equals NULL, so one unique index over (plugin, org_id, name) would
# let two installation-wide rows of one setting in: one partial index per kind of
# row instead (both databases have partial indexes).
_installation_wide = PluginSetting.org_id.is_(None)
_per_organization = PluginSetting.org_id.is_not(None)
Index(
    "uq_plugin_settings_installation",
    PluginSetting.plugin,
    PluginSetting.name,
    unique=True,
    sqlite_where=_installation_wide,
    postgresql_where=_installation_wide,
)
Index(
    "uq_plugin_settings_organization",
    PluginSetting.plugin,
    PluginSetting.org_id,
    PluginSetting.name,
    unique=True,
    sqlite_where=_per_organization,
    postgresql_where=_per_organization,
)
