"""Database engine (SQLite in WAL mode or PostgreSQL) and schema migration on start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
POOL_SIZE = 45
SQLITE_BUSY_MS = 30_000  # how long a write waits for SQLite's lock before "database is locked"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite connections get WAL, a busy timeout and NORMAL sync."""
    # More pooled connections than the threadpool has threads (anyio: 40): a sync route
    # holds its connection until its session dependency exits, and that exit needs a
    # thread too; a smaller pool can deadlock under load until the pool timeout.
    pool = {"pool_size": POOL_SIZE, "max_overflow": 10, "pool_timeout": 10}
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True, **pool)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigError(f"invalid database URL: {_first_line(exc)}") from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot open the database: {_first_line(exc)}") from None


def error_name(exc: Exception) -> str:
    """The driver's error class (SQLAlchemy wraps it), for a log line without its SQL."""
    return type(getattr(exc, "orig", None) or exc).__name__


def stored_now() -> datetime:
    """Naive UTC to the second, as the database stores times."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _first_line(exc: Exception) -> str:
    """The driver's own message, one line (SQLAlchemy appends SQL and a help link)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return f"{type(cause).__name__}: {lines[0]}"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
