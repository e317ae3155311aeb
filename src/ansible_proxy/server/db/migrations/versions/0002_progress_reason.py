"""Progress events get an optional reason: who rolled back and why.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: an ALTER TABLE on both SQLite and PostgreSQL,
    # no table rewrite; every existing event keeps its row and gets no reason.
    op.add_column("progress", sa.Column("reason", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("progress") as batch:
        batch.drop_column("reason")
