"""Staged rollouts: policies, rollouts and their members, node labels, webhook deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: plain ALTER TABLEs on SQLite and PostgreSQL.
    op.add_column("releases", sa.Column("bad_since", sa.DateTime(), nullable=True))
    op.add_column("nodes", sa.Column("labels", sa.String(1024), nullable=True))
    op.add_column("events", sa.Column("detail", sa.String(300), nullable=True))
    # Rollout steps have longer kinds (rollout-node-failed). SQLite ignores VARCHAR lengths
    # and would need a table copy to change one: only the others are altered.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("events", "kind", type_=sa.String(32), existing_nullable=False)
    op.create_table(
        "rollout_policies",
        sa.Column("bin_id", sa.Integer(), sa.ForeignKey("bins.id"), primary_key=True),
        sa.Column("arch", sa.String(16), primary_key=True),
        sa.Column("immediate", sa.Boolean(), nullable=False),
        sa.Column("canary", sa.String(16), nullable=False),
        sa.Column("waves", sa.String(128), nullable=False),
        sa.Column("bake_seconds", sa.Integer(), nullable=False),
        sa.Column("max_failures", sa.String(16), nullable=False),
        sa.Column("canary_label", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bin_id", sa.Integer(), sa.ForeignKey("bins.id"), nullable=False),
        sa.Column("arch", sa.String(16), nullable=False),
        sa.Column("release_sha", sa.String(64), nullable=False),
        sa.Column("previous_sha", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reverted", sa.Boolean(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("wave_count", sa.Integer(), nullable=False),
        sa.Column("wave_started_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_rollouts_bin_arch_state", "rollouts", ["bin_id", "arch", "state"])
    op.create_table(
        "rollout_members",
        sa.Column("rollout_id", sa.Integer(), sa.ForeignKey("rollouts.id"), primary_key=True),
        sa.Column("node_name", sa.String(255), primary_key=True),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(), nullable=True),
        sa.Column("baked_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.String(300), nullable=True),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_next_attempt_at", "webhook_deliveries", ["next_attempt_at"]
    )
    op.create_index("ix_webhook_deliveries_delivered_at", "webhook_deliveries", ["delivered_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("rollout_members")
    op.drop_index("ix_rollouts_bin_arch_state", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("rollout_policies")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("events", "kind", type_=sa.String(16), existing_nullable=False)
    for table, column in (("events", "detail"), ("nodes", "labels"), ("releases", "bad_since")):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
