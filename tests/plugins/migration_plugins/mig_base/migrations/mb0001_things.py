"""mig-base things

Revision ID: mb0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mb0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("mig-base",)
# The foreign key to organizations needs core's first revision.
depends_on: str | Sequence[str] | None = "0001"


def upgrade() -> None:
    things = op.create_table(
        "mig_base_things",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_mig_base_things_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mig_base_things")),
        sa.UniqueConstraint("name", name=op.f("uq_mig_base_things_name")),
    )
    op.bulk_insert(things, [{"id": 1, "org_id": None, "name": "seed"}])


def downgrade() -> None:
    op.drop_table("mig_base_things")
