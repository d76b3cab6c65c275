"""mig-child items

Revision ID: mc0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mc0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("mig-child",)
depends_on: str | Sequence[str] | None = "mb0001"


def upgrade() -> None:
    op.create_table(
        "mig_child_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thing_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=100), nullable=False),
        # PostgreSQL refuses this constraint while mig_base_things does not exist.
        sa.ForeignKeyConstraint(
            ["thing_id"], ["mig_base_things.id"], name=op.f("fk_mig_child_items_thing_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mig_child_items")),
    )
    # Any database refuses this before mig-base's migration ran (no such table).
    op.execute(
        "INSERT INTO mig_child_items (thing_id, note) "
        "SELECT id, 'copied from ' || name FROM mig_base_things WHERE name = 'seed'"
    )


def downgrade() -> None:
    op.drop_table("mig_child_items")
