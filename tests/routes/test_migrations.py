"""A database made by an earlier release (schema 0001) is migrated on start and keeps its data,
on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ansible_proxy.server.db.engine import MIGRATIONS_DIR, make_engine
from tests.support.answers import envelope
from tests.support.inprocess import BinManagerAppFactory

SHA_1, SHA_2 = "1" * 64, "2" * 64
# Days relative to today: the server prunes history older than 30 days on start.
ROWS = """
INSERT INTO bins (id, name, paused, created_at) VALUES (1, 'web', false, '{D1} 10:00:00');
INSERT INTO releases (id, bin_id, arch, sha256, size, published_at)
  VALUES (1, 1, 'x86_64', '{SHA_1}', 7, '{D1} 10:00:00'),
         (2, 1, 'x86_64', '{SHA_2}', 7, '{D2} 10:00:00');
INSERT INTO latest (bin_id, arch, release_id, paused_release_id, updated_at)
  VALUES (1, 'x86_64', 1, NULL, '{D3} 10:00:00');
INSERT INTO nodes (id, name, cpu_arch, os_release, agent_version, first_seen, last_seen)
  VALUES (1, 'web-01', 'x86_64', 'Debian 12', '1.0', '{D1} 10:00:00', '{D3} 10:00:00');
INSERT INTO progress (id, node_id, bin_id, target_hash, processing_time, status, reported_at)
  VALUES (1, 1, 1, '{SHA_2}', 12, 'failed', '{D2} 11:00:00');
"""


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return str(ScriptDirectory.from_config(config).get_current_head())


def _database_at_0001(url: str) -> None:
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        assert "reason" not in {c["name"] for c in inspect(connection).get_columns("progress")}
        today = datetime.now(UTC).date()
        days = {f"D{n}": (today - timedelta(days=4 - n)).isoformat() for n in (1, 2, 3)}
        for statement in ROWS.format(SHA_1=SHA_1, SHA_2=SHA_2, **days).split(";"):
            if statement.strip():
                connection.execute(text(statement))
    engine.dispose()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_0001_database_is_upgraded_in_place(
    database: str,
    request: pytest.FixtureRequest,
    bin_manager_app_factory: BinManagerAppFactory,
    tmp_path: Path,
) -> None:
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+pysqlite:///{tmp_path / 'old.sqlite3'}"
    _database_at_0001(url)

    # Migrated on start; a node of 0001 has no credential: it writes as before (migrate).
    server = bin_manager_app_factory(database_url=url, node_auth="migrate")
    with server.client(base_url=server.api) as http:
        data = envelope(http.get("/bins/web", params={"arch": "x86_64"}), 200)["data"]
        assert data == {"sha256": SHA_1, "version": "latest", "withdrawn": [SHA_2]}
        old = envelope(server.admin_get("/nodes/web-01"), 200)["data"]["progress"]
        assert [(p["targetHash"], p["status"], p["reason"]) for p in old] == [
            (SHA_2, "failed", None)
        ]
        report = {
            "nodeName": "web-01",
            "binName": "web",
            "targetHash": SHA_2,
            "processingTime": 3,
            "status": "failed",
            "reason": "inspector: port 8080 closed",
        }
        envelope(http.post("/bins/web/progress", json=report), 200)
    progress = envelope(server.admin_get("/nodes/web-01"), 200)["data"]["progress"]
    assert [p["reason"] for p in progress] == ["inspector: port 8080 closed", None]

    server.restart()  # migrating again is a no-op
    engine = make_engine(url)
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
        )
        # 0003: node credentials; the node of 0001 is registered, not enrolled.
        assert connection.execute(text("SELECT count(*) FROM node_credentials")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM progress")).scalar() == 2
    engine.dispose()
