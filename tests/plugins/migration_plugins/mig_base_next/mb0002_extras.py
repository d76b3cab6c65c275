"""mig-base extras: the plugin's second revision

Revision ID: mb0002
Revises: mb0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mb0002"
down_revision: str | None = "mb0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mig_base_extras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thing_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thing_id"], ["mig_base_things.id"], name=op.f("fk_mig_base_extras_thing_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mig_base_extras")),
    )


def downgrade() -> None:
    op.drop_table("mig_base_extras")
