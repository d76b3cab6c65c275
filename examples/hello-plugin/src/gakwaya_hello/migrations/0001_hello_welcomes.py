"""hello_welcomes: one row per member the plugin welcomed.

Revision ID: hello_0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hello_0001"
down_revision: str | None = None
# The branch is named after the plugin; the kernel upgrades "gakwaya-hello@head".
branch_labels: str | Sequence[str] | None = ("gakwaya-hello",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hello_welcomes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hello_welcomes"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_hello_welcomes_org", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("org_id", "user_id", name="uq_hello_welcomes_org_user"),
    )
    op.create_index("ix_hello_welcomes_org_id", "hello_welcomes", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_hello_welcomes_org_id", table_name="hello_welcomes")
    op.drop_table("hello_welcomes")
