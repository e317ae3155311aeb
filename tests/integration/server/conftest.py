"""The endpoint suites run against SQLite and against a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.answers import MAX_UPLOAD
from tests.support.postgres import PostgresServer
from tests.support.server import BinManager


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BinManager]:
    """One server per test module and database; tests use their own bin and node names.

    A module may set `SERVER_OPTIONS` (keyword arguments of BinManager) to configure it.
    """
    database = None
    pg: PostgresServer | None = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        database = pg.create_database()
    options = dict(getattr(request.module, "SERVER_OPTIONS", {}))
    manager = BinManager(
        tmp_path_factory.mktemp(f"bm-{request.param}"),
        database_url=pg.url(database) if pg and database else None,
        extra_env={"BIN_MANAGER_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), **options.pop("extra_env", {})},
        **options,
    )
    try:
        yield manager.start()
    finally:
        manager.stop()
        if pg and database:
            pg.drop_database(database)


@pytest.fixture
def http(server: BinManager) -> Iterator[httpx.Client]:
    """A plain client for the server's API (an agent's view: no admin token)."""
    with server.client(base_url=server.api) as client:
        yield client


@pytest.fixture
def name() -> str:
    """A bin name no other test uses."""
    return f"app-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def node() -> str:
    return f"host-{uuid.uuid4().hex[:10]}"
