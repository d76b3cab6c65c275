"""plugin settings

Values set for the settings plugins declare in their manifests, installation-wide
(``org_id`` NULL) or per organization. Two partial unique indexes, since NULL never
equals NULL in a plain unique constraint. Written by hand, as 0003.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gakwaya.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plugin_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plugin", sa.String(length=200), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("ciphertext", sa.Text(), nullable=True),
        sa.Column("updated_at", gakwaya.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_plugin_settings_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_settings")),
    )
    op.create_index(op.f("ix_plugin_settings_org_id"), "plugin_settings", ["org_id"])
    op.create_index(
        "uq_plugin_settings_installation",
        "plugin_settings",
        ["plugin", "name"],
        unique=True,
        sqlite_where=sa.text("org_id IS NULL"),
        postgresql_where=sa.text("org_id IS NULL"),
    )
    op.create_index(
        "uq_plugin_settings_organization",
        "plugin_settings",
        ["plugin", "org_id", "name"],
        unique=True,
        sqlite_where=sa.text("org_id IS NOT NULL"),
        postgresql_where=sa.text("org_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_plugin_settings_organization", table_name="plugin_settings")
    op.drop_index("uq_plugin_settings_installation", table_name="plugin_settings")
    op.drop_index(op.f("ix_plugin_settings_org_id"), table_name="plugin_settings")
    op.drop_table("plugin_settings")
