"""Issue 29 (item 3): a rollout policy's `--watch`, how long a rollout that reached every
wave stays `watching` (still judged, still reverted by a failure) before it completes
(NULL: not watched, as before).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollout_policies", sa.Column("watch_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollout_policies") as table:
        table.drop_column("watch_seconds")
