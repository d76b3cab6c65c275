"""plugin state

Per-installation enable/disable of plugins (``gakwaya plugins enable|disable``,
``POST /api/v1/plugins/{name}/enable|disable``). Written by hand, as 0002.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gakwaya.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plugin_state",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", gakwaya.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_plugin_state")),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
