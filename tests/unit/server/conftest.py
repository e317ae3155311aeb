"""A real SQLite database, migrated to the newest schema, for the server's unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.engine import make_engine, make_sessionmaker, migrate


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite3"


@pytest.fixture
def sessions(db: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite+pysqlite:///{db}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()
