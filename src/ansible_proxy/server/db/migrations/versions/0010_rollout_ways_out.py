"""Issue 26 (items 3, 4): who takes part in a rollout, and a way out of every halted state.

`node_holds`: the holds a node reports in its keepalive (`held: {bin: reason}`), one row a
bin, so that a held node is skipped by its wave. `rollout_left_out`: the nodes a rollout
left out at its start (revoked, stale, held), and why. `rollout_members.before_sha`: what
the node ran before it was told the release, the release a revert tells it back when a
signed host could not take the rollout's previous one. `rollouts.stuck_at`: when the
current wave's stuck notice went out (once per wave).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_holds",
        sa.Column("node_name", sa.String(255), primary_key=True),
        sa.Column("bin_name", sa.String(128), primary_key=True, index=True),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "rollout_left_out",
        sa.Column("rollout_id", sa.Integer(), sa.ForeignKey("rollouts.id"), primary_key=True),
        sa.Column("node_name", sa.String(255), primary_key=True),
        sa.Column("reason", sa.String(300), nullable=False),
    )
    # Nullable columns without defaults: plain ALTER TABLEs on SQLite and PostgreSQL.
    op.add_column("rollout_members", sa.Column("before_sha", sa.String(64), nullable=True))
    op.add_column("rollouts", sa.Column("stuck_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("rollouts", "stuck_at")
    op.drop_column("rollout_members", "before_sha")
    op.drop_table("rollout_left_out")
    op.drop_table("node_holds")
