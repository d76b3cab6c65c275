"""mig-badlabel rows, on a branch named after another plugin

Revision ID: bl0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bl0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("badlabel",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mig_badlabel_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mig_badlabel_rows")),
    )


def downgrade() -> None:
    op.drop_table("mig_badlabel_rows")
