"""Issue 29 (item 5): a rollout policy's `--max-offline` and `--max-refused`, the offline
and refusing members a wave may have and still be promoted (NULL: no limit, as before).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollout_policies", sa.Column("max_offline", sa.String(16), nullable=True))
    op.add_column("rollout_policies", sa.Column("max_refused", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollout_policies") as table:
        table.drop_column("max_refused")
        table.drop_column("max_offline")
