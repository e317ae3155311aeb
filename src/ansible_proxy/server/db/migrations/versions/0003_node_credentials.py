"""Per-node credentials and cluster proxies (docs/security.md, issue 14).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New tables only: existing nodes keep their rows and are "not enrolled" (they may claim
    # their name once, or keep writing as before under BIN_MANAGER_NODE_AUTH=migrate).
    op.create_table(
        "node_credentials",
        sa.Column("node_name", sa.String(255), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("proxy_name", sa.String(64), nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("pending_hash", sa.String(64), nullable=True),
        sa.Column("pending_proxy", sa.String(64), nullable=True),
        sa.Column("pending_info", sa.String(1024), nullable=True),
        sa.Column("pending_address", sa.String(64), nullable=True),
        sa.Column("pending_at", sa.DateTime, nullable=True, index=True),
        sa.Column("changed_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "proxies",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("proxies")
    op.drop_table("node_credentials")
