"""Issue 28: a team. `users` (people, argon2id password hashes), `api_tokens` (scoped
tokens, sha256 hashes), `audit_entries` (append-only: triggers refuse UPDATE and DELETE)
and `events.actor` (who made each change the activity log shows).

An existing installation has no user and no token: its admin token goes on working as
before (the break-glass credential), and its first `bin-manager users add` makes the first
person.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

APPEND_ONLY = "audit entries are append-only"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_entries_no_{verb.lower()} BEFORE {verb} ON audit_entries
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_FUNCTION = f"""CREATE FUNCTION audit_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"""
POSTGRES_TRIGGER = """CREATE TRIGGER audit_entries_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("bins", sa.String(1024), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("must_change", sa.Boolean(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("bins", sa.String(1024), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "audit_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_name", sa.String(128), nullable=False),
        sa.Column("actor_fingerprint", sa.String(16), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("bin_name", sa.String(128), nullable=True),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("arch", sa.String(16), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(300), nullable=True),
    )
    for column in ("at", "actor_name", "action", "bin_name"):
        op.create_index(f"ix_audit_entries_{column}", "audit_entries", [column])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("actor", sa.String(200), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION audit_entries_append_only()")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("actor")
    op.drop_table("audit_entries")  # its SQLite triggers go with it
    op.drop_table("api_tokens")
    op.drop_table("users")
