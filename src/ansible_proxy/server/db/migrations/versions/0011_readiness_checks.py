"""Issue 26 (item 6): `readiness_checks`, the row each server machine upserts at every
readiness check (GET /readyz), so that "ready" means the database takes a write.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readiness_checks",
        sa.Column("server", sa.String(255), primary_key=True),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("checks", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("readiness_checks")
