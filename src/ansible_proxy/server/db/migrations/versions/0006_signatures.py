"""Signed releases (issue 18): the publishers' signatures of each release's statements.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "release_id",
            sa.Integer(),
            sa.ForeignKey("releases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("bin_id", sa.Integer(), sa.ForeignKey("bins.id"), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("statement_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("release_id", "statement_sha256", "key_fingerprint"),
    )
    op.create_index("ix_signatures_release_id", "signatures", ["release_id"])
    op.create_index("ix_signatures_bin_id", "signatures", ["bin_id"])


def downgrade() -> None:
    op.drop_index("ix_signatures_bin_id", table_name="signatures")
    op.drop_index("ix_signatures_release_id", table_name="signatures")
    op.drop_table("signatures")
