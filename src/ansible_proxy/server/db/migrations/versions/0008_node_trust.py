"""Issue 25 (items 4, 5, 7): the rollout order's secret, canaries by name and by labels an
admin set, and what a revoked credential leaves to tell its own holder.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: plain ALTER TABLEs on SQLite and PostgreSQL.
    op.add_column("node_credentials", sa.Column("revoked_hash", sa.String(64), nullable=True))
    op.add_column("node_credentials", sa.Column("revoked_proxy", sa.String(64), nullable=True))
    op.add_column("rollout_policies", sa.Column("canary_nodes", sa.Text(), nullable=True))
    # A canary label may now say `reported:k=v`, and a policy may name canary nodes. SQLite
    # ignores VARCHAR lengths (and would need a table copy to change one).
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "rollout_policies", "canary_label", type_=sa.String(256), existing_nullable=True
        )
        op.alter_column("rollouts", "policy", type_=sa.Text(), existing_nullable=False)
    op.create_table(
        "node_admin_labels",
        sa.Column("node_name", sa.String(255), primary_key=True),
        sa.Column("labels", sa.String(1024), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    secrets_table = op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    # Made once, here, so that every replica and worker sharing the database orders a
    # rollout's nodes alike (server/db/secrets.py makes one too if the row is ever lost).
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(
        secrets_table,
        [{"name": "rollout-order", "value": secrets.token_hex(32), "created_at": now}],
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("node_admin_labels")
    op.drop_column("rollout_policies", "canary_nodes")
    op.drop_column("node_credentials", "revoked_proxy")
    op.drop_column("node_credentials", "revoked_hash")
