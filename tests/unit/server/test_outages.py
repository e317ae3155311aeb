"""Which errors are a resource's fault and what they answer (outages.fault_of), from real
errors: /dev/full, a SQLite file another connection holds, a port nobody listens on; and
an outage logged once when it starts and once when it ends."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ansible_proxy.server.outages import (
    DATA_DIR,
    DATABASE,
    Fault,
    Outages,
    Resources,
    fault_of,
)
from tests.support.procs import free_port

WHERE = Resources("the database (PostgreSQL at db.example:5433, database bm)", Path("/srv/bm"))


def _caught(url: str, statement: str) -> SQLAlchemyError:
    engine = create_engine(url, connect_args={"timeout": 0} if url.startswith("sqlite") else {})
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except SQLAlchemyError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement!r} did not fail")


def test_the_database_url_is_named_by_host_and_port_never_its_password() -> None:
    where = Resources.of("postgresql+psycopg://bm:s3cret-Pw@db.example:5433/bm", Path("/d"))
    assert where.database == "the database (PostgreSQL at db.example:5433, database bm)"
    assert "s3cret" not in repr(where)
    local = Resources.of("sqlite+pysqlite:////srv/bm/bin-manager.sqlite3", Path("/srv/bm"))
    assert local.database == "the database (SQLite /srv/bm/bin-manager.sqlite3)"


def _full_disk_error() -> OSError:
    with Path("/dev/full").open("wb", buffering=0) as full:
        try:
            full.write(b"x")
        except OSError as exc:
            return exc
    raise AssertionError("/dev/full took a byte")


def test_a_full_disk_is_507_naming_the_data_directory() -> None:
    fault = fault_of(_full_disk_error(), WHERE)
    assert fault is not None
    assert (fault.resource, fault.status) == (DATA_DIR, 507)
    assert fault.message == (
        "the data directory /srv/bm is full (No space left on device): free space there, then retry"
    )
    elsewhere = fault_of(OSError(28, "No space left on device", "/var/tmp/x.part"), WHERE)
    assert elsewhere is not None
    assert elsewhere.message.startswith("the directory /var/tmp is full")


def test_sqlite_held_by_another_connection_is_503_locked(tmp_path: Path) -> None:
    path = tmp_path / "bm.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        exc = _caught(f"sqlite+pysqlite:///{path}", "INSERT INTO t VALUES (1)")
    finally:
        holder.close()
    where = Resources.of(f"sqlite+pysqlite:///{path}", tmp_path)
    assert fault_of(exc, where) == Fault(
        DATABASE,
        503,
        f"the database (SQLite {path}) is locked by another process or connection "
        "(database is locked): retry",
    )


def test_postgresql_unreachable_is_503_with_the_drivers_reason() -> None:
    url = f"postgresql+psycopg://bm:s3cret-Pw@127.0.0.1:{free_port()}/bm"
    exc = _caught(url, "SELECT 1")
    assert isinstance(exc, OperationalError)
    where = Resources.of(url, Path("/d"))
    fault = fault_of(exc, where)
    assert fault is not None
    assert fault.status == 503
    assert fault.message.startswith("the database (PostgreSQL at 127.0.0.1:")
    assert fault.message.endswith("is unreachable (Connection refused)")


def test_errors_of_the_statement_itself_stay_500s(tmp_path: Path) -> None:
    """A bug (a table that does not exist) is no outage: its traceback must be seen."""
    exc = _caught(f"sqlite+pysqlite:///{tmp_path / 'x.sqlite3'}", "SELECT * FROM nowhere")
    assert fault_of(exc, WHERE) is None
    assert fault_of(OSError(13, "Permission denied", "/srv/bm/x"), WHERE) is None
    assert fault_of(ValueError("x"), WHERE) is None


def test_an_outage_is_logged_when_it_starts_and_ends_with_its_failed_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    moments = iter([100.0, 116.5])
    outages = Outages(WHERE, probe=lambda _resource: None, clock=lambda: next(moments))
    refused = OSError(28, "No space left on device", "/srv/bm/artifacts/tmp/a.part")
    with caplog.at_level(logging.INFO, logger="ansible_proxy.server.outages"):
        for _ in range(93):
            fault = outages.answer(refused)
            assert fault is not None
            assert fault.status == 507
        assert outages.note(refused)  # background work: recorded, not counted
        assert [fault.resource for fault in outages.current()] == [DATA_DIR]
        outages.recovered(DATA_DIR)
        outages.recovered(DATA_DIR)  # nothing open: nothing logged
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("the data directory /srv/bm is full (No space left on device)")
    assert lines[1].startswith(
        "the data directory /srv/bm is back after 16.5 s; 93 request(s) failed meanwhile"
    )
    assert outages.current() == []
