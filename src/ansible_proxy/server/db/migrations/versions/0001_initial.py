"""The initial schema: bins, releases, latest pointers, nodes, reports, progress, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False, index=True),
        sa.Column("arch", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("bin_id", "arch", "sha256"),
    )
    op.create_table(
        "latest",
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), primary_key=True),
        sa.Column("arch", sa.String(16), primary_key=True),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("paused_release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("cpu_arch", sa.String(255), nullable=False),
        sa.Column("os_release", sa.String(255), nullable=False),
        sa.Column("agent_version", sa.String(255), nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
    )
    op.create_table(
        "node_bins",
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), primary_key=True, index=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("reported_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "bin_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("reported_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "progress",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False, index=True),
        sa.Column("target_hash", sa.String(64), nullable=False),
        sa.Column("processing_time", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reported_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("bin_name", sa.String(128), nullable=False),
        sa.Column("arch", sa.String(16), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "events",
        "progress",
        "bin_reports",
        "node_bins",
        "nodes",
        "latest",
        "releases",
        "bins",
    ):
        op.drop_table(table)
