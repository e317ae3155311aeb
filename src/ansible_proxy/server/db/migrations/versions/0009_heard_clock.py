"""Issue 26 (items 1, 2): the heard clock — silence and bakes measured only on time the
server was up, writing and able to hear — and whose failure a `failed` report tells.

`heard_clock` is one row: `heard`, the seconds of heard time so far; `db_at`, the
database's own clock at its last advance; `grace_from`, the heard time at which the last
outage ended (server/rollouts/heard.py). Each node's `heard` is the heard time of its
last call. At this migration the heard clock starts at 0 and each node is given minus
the age of its `last_seen`, so a node silent before the upgrade is as silent after it.
A bake in progress across the upgrade starts over (its heard start is unknown).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    clock = op.create_table(
        "heard_clock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("heard", sa.Float(), nullable=False),
        sa.Column("db_at", sa.Float(), nullable=False),
        sa.Column("grace_from", sa.Float(), nullable=False),
    )
    # db_at 0: the first check after the upgrade sees a gap, an outage, and gives grace.
    op.bulk_insert(clock, [{"id": 1, "heard": 0.0, "db_at": 0.0, "grace_from": 0.0}])
    # Nullable columns without defaults: plain ALTER TABLEs on SQLite and PostgreSQL.
    op.add_column("nodes", sa.Column("heard", sa.Float(), nullable=True))
    op.add_column("rollouts", sa.Column("wave_heard", sa.Float(), nullable=True))
    op.add_column("rollout_members", sa.Column("succeeded_heard", sa.Float(), nullable=True))
    op.add_column("rollout_members", sa.Column("trouble", sa.String(16), nullable=True))
    op.add_column("progress", sa.Column("cause", sa.String(16), nullable=True))
    now = datetime.now(UTC).replace(tzinfo=None)
    if op.get_bind().dialect.name == "sqlite":
        age = sa.text("UPDATE nodes SET heard = (julianday(last_seen) - julianday(:now)) * 86400.0")
        op.execute(age.bindparams(now=f"{now:%F %T.%f}"))
    else:
        age = sa.text(
            "UPDATE nodes SET heard = "
            "CAST(EXTRACT(EPOCH FROM (last_seen - :now)) AS DOUBLE PRECISION)"
        )
        op.execute(age.bindparams(now=now))


def downgrade() -> None:
    op.drop_column("progress", "cause")
    op.drop_column("rollout_members", "trouble")
    op.drop_column("rollout_members", "succeeded_heard")
    op.drop_column("rollouts", "wave_heard")
    op.drop_column("nodes", "heard")
    op.drop_table("heard_clock")
