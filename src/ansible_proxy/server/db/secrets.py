"""Secrets the server keeps for itself in the database, never served: the same on every
replica and worker sharing it. Migration 0008 makes the rollout order's key; one lost
since is made again here, once (a concurrent maker's row wins)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import ServerSecret

ROLLOUT_ORDER = "rollout-order"


def server_secret(session: Session, name: str, now: datetime) -> bytes:
    """The secret called `name`, made (64 hex digits) when there is none yet."""
    row = session.get(ServerSecret, name)
    if row is None:
        dialect = session.get_bind().dialect.name
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            make(ServerSecret)
            .values(name=name, value=secrets.token_hex(32), created_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = session.get(ServerSecret, name, populate_existing=True)
        assert row is not None
    return row.value.encode()
