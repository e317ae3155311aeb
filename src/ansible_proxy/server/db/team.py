"""Tables of a team (docs/security.md "People, roles and tokens"): people, API tokens and
the audit trail. Apart from models.py (same Base) only to keep each module short.

Only hashes are stored: a person's password as argon2id (auth/passwords.py), an API token
as its sha256 (a random 256-bit secret needs no slow hash, as node tokens). The audit
trail is append-only: no route changes or deletes a row, and migration 0012 puts triggers
on the table that refuse UPDATE and DELETE on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ansible_proxy.server.db.models import Base

# SQLite numbers rows itself only for an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
AUDIT_ID = BigInteger().with_variant(Integer(), "sqlite")


class User(Base):
    """A person who logs in to the dashboard: a role, maybe limited to bins."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    bins: Mapped[str | None] = mapped_column(String(1024))  # "web,api*"; None: every bin
    password_hash: Mapped[str] = mapped_column(String(255))
    # The password was given by an admin (users add, users reset-password): the dashboard
    # asks for a new one before anything else.
    must_change: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped to end every session of the person at once (disable, a new password).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class ApiToken(Base):
    """A token for automation (a CI job): a role, maybe limited to bins, and an expiry.
    A revoked token keeps its row and its name (the audit trail names it)."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    bins: Mapped[str | None] = mapped_column(String(1024))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class AuditEntry(Base):
    """One change, login or refusal: who, what, on what, when, from where."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(AUDIT_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # user, token, admin-token, open
    actor_name: Mapped[str] = mapped_column(String(128), index=True)
    actor_fingerprint: Mapped[str | None] = mapped_column(String(16))  # a token's
    action: Mapped[str] = mapped_column(String(32), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # ok, refused, failed
    bin_name: Mapped[str | None] = mapped_column(String(128), index=True)
    target: Mapped[str | None] = mapped_column(String(255))  # a node, user, token, proxy
    arch: Mapped[str | None] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(300))
