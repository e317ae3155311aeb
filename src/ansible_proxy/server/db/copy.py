"""`bin-manager db copy`: every row of one database into another, empty one (SQLite to
PostgreSQL): releases, nodes, node credentials, signature sequences, rollouts, events,
people, the audit trail. Nothing is left behind, so signed hosts keep accepting the next
release and enrolled nodes keep their credentials.

Both schemas are brought to the newest migration first (as `serve` does on start). The
target must hold no row but the ones its migrations made; the copy is one transaction on
the target (a failure leaves it empty), and PostgreSQL's id sequences are moved past the
copied ids.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, Table, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.db import team  # noqa: F401  (its tables join Base.metadata)
from ansible_proxy.server.db.engine import make_engine, migrate
from ansible_proxy.server.db.models import Base

BATCH = 1000
SEEDED = frozenset({"heard_clock", "server_secrets"})  # rows migrations write: replaced


def copy_database(source_url: str, target_url: str, say: Callable[[str], None]) -> int:
    """Copy every table of `source_url` into the empty `target_url`; the rows copied."""
    if source_url == target_url:
        raise ConfigError("db copy: --from and --to are the same database")
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        migrate(source)
        migrate(target)
        tables = _tables(target)
        _check_empty(target, tables)
        total = 0
        with source.connect() as reading, target.begin() as writing:
            for table in tables:
                if table.name in SEEDED:
                    writing.execute(table.delete())
                count = 0
                rows = reading.execution_options(stream_results=True).execute(select(table))
                while batch := rows.fetchmany(BATCH):
                    writing.execute(table.insert(), [dict(row._mapping) for row in batch])
                    count += len(batch)
                if count:
                    say(f"{table.name}: {count}")
                total += count
            if target.dialect.name == "postgresql":
                _move_sequences(writing, tables)
        return total
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ConfigError(
            f"db copy failed, nothing copied: {type(cause).__name__}: {first}"
        ) from None
    finally:
        source.dispose()
        target.dispose()


def _tables(target: Engine) -> list[Table]:
    """The tables to copy, parents first; every table of the migrated schema has a model."""
    known = {table.name for table in Base.metadata.sorted_tables}
    found = set(inspect(target).get_table_names()) - {"alembic_version"}
    if found - known:
        raise ConfigError(f"db copy: tables without a model: {', '.join(sorted(found - known))}")
    return [table for table in Base.metadata.sorted_tables if table.name in found]


def _check_empty(target: Engine, tables: list[Table]) -> None:
    with target.connect() as conn:
        full = [
            table.name
            for table in tables
            if table.name not in SEEDED
            and conn.execute(select(func.count()).select_from(table)).scalar_one()
        ]
    if full:
        raise ConfigError(
            f"db copy: the target database is not empty ({', '.join(full)} hold rows); "
            "copy into a new, empty database"
        )


def _move_sequences(conn: Connection, tables: list[Table]) -> None:
    """Each serial id column's sequence past its largest copied id (names: our models')."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1:
            continue
        sequence = conn.execute(
            select(func.pg_get_serial_sequence(table.name, keys[0].name))
        ).scalar()
        if sequence is None:
            continue
        column = keys[0]
        largest = func.max(column)
        conn.execute(select(func.setval(sequence, func.coalesce(largest, 1), largest.is_not(None))))
