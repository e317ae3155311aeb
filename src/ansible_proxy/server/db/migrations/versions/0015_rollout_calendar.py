"""Issue 29 (item 1): a rollout policy's maintenance windows (`--window`, as written;
NULL: any time, as before) and the fleet-wide freeze (`bin-manager freeze`: one row).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollout_policies", sa.Column("windows", sa.Text(), nullable=True))
    op.create_table(
        "fleet_freeze",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_freeze")
    with op.batch_alter_table("rollout_policies") as table:
        table.drop_column("windows")
