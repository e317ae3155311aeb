"""An installation from before people and tokens (schema 0011) keeps working (issue 28.7):
migrated on start (0012: users, api_tokens, audit_entries, events.actor), its admin token
still does everything, its events are kept, and its first `users add` makes the first admin;
on SQLite and on PostgreSQL, whose audit table refuses UPDATE and DELETE as SQLite's does."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from ansible_proxy.server.db.engine import MIGRATIONS_DIR, make_engine
from tests.support.inprocess import BinManagerAppFactory
from tests.support.team import admin_call, make_token

SHA = "1" * 64
ROWS = """
INSERT INTO bins (name, paused, created_at) VALUES ('web', false, '2026-12-01 10:00:00');
INSERT INTO events (at, kind, bin_name, arch, sha256)
  VALUES ('2026-12-01 10:00:00', 'publish', 'web', 'x86_64', '{SHA}');
"""


def _database_at_0011(url: str) -> None:
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0011")
        assert "users" not in inspect(connection).get_table_names()
        for statement in ROWS.format(SHA=SHA).split(";"):
            if statement.strip():
                connection.execute(text(statement))
    engine.dispose()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_installation_before_people_keeps_its_admin_token_and_gets_its_first_admin(
    database: str,
    request: pytest.FixtureRequest,
    bin_manager_app_factory: BinManagerAppFactory,
    tmp_path: Path,
) -> None:
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+pysqlite:///{tmp_path / 'old.sqlite3'}"
    _database_at_0011(url)

    server = bin_manager_app_factory(database_url=url)
    events = server.admin_get("/events").json()["data"]
    assert [(e["kind"], e["sha256"]) for e in events] == [("publish", SHA)]
    server.publish("web", b"after the upgrade")  # the admin token, as before
    assert admin_call(server, "GET", "/users") == []
    first = admin_call(server, "POST", "/users", json={"name": "alice"})
    assert first["role"] == "admin"
    token = make_token(server, "ci", "publisher", ["web"])
    with server.client(headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get(f"{server.api}/admin/whoami").json()["data"]["bins"] == ["web"]
    trail = admin_call(server, "GET", "/audit")
    assert [(row["actor"], row["action"]) for row in trail] == [
        ("admin-token", "create-token"),
        ("admin-token", "add-user"),
        ("admin-token", "publish"),
    ]
    engine = make_engine(url)
    try:
        for statement in ("UPDATE audit_entries SET actor_name = 'x'", "DELETE FROM audit_entries"):
            with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))
    finally:
        engine.dispose()
    assert len(admin_call(server, "GET", "/audit")) == 3
