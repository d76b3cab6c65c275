"""The plugin's own table, prefixed with its name (its migrations create it)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, UniqueConstraint

metadata = MetaData()

welcomes = Table(
    "hello_welcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", Integer, nullable=False, index=True),
    Column("user_id", Integer, nullable=False),
    Column("event_id", Integer, nullable=False),
    UniqueConstraint("org_id", "user_id", name="uq_hello_welcomes_org_user"),
)
