"""A real SQLite database, migrated to the newest schema, for the server's unit tests.

Migrated once per test run into a template (Alembic's upgrade from nothing costs a
tenth of a second), then copied for each test: every test still gets its own database,
the one `migrate` makes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.engine import make_engine, make_sessionmaker, migrate


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file at the newest schema: copy it, never open it."""
    path = tmp_path_factory.mktemp("template") / "db.sqlite3"
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite3"


@pytest.fixture
def sessions(db: Path, migrated: Path) -> Iterator[sessionmaker[Session]]:
    shutil.copyfile(migrated, db)
    engine = make_engine(f"sqlite+pysqlite:///{db}")
    yield make_sessionmaker(engine)
    engine.dispose()
