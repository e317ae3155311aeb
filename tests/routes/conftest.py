"""The endpoint suites in this process (tests/support/inprocess.py), against SQLite and,
marked `postgres` (so `slow`: it starts PostgreSQL), against a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.answers import MAX_UPLOAD
from tests.support.inprocess import BinManagerApp
from tests.support.postgres import PostgresServer


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BinManagerApp]:
    """One app per test module and database; tests use their own bin and node names.

    Node credentials in "migrate" mode, as `BinManager` starts by default: these suites
    write as the original design's agents did, without a credential. A module may set
    `SERVER_OPTIONS` (keyword arguments of BinManagerApp) to configure it.
    """
    database = None
    pg: PostgresServer | None = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        database = pg.create_database()
    options: dict[str, Any] = {"node_auth": "migrate", "max_upload_bytes": MAX_UPLOAD}
    options.update(getattr(request.module, "SERVER_OPTIONS", {}))
    app = BinManagerApp(
        tmp_path_factory.mktemp(f"app-{request.param}"),
        database_url=pg.url(database) if pg and database else None,
        **options,
    )
    try:
        yield app.start()
    finally:
        app.stop()
        if pg and database:
            pg.drop_database(database)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """People's passwords hashed at the lowest argon2id cost in these in-process suites
    (the production cost, 64 MiB and 3 passes a hash, made the role table's module spend
    most of `make test-quick` hashing); the real servers of tests/integration/ keep it."""
    from argon2 import PasswordHasher

    from ansible_proxy.server.auth import passwords

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        patch.setattr(passwords, "_DUMMY", cheap.hash("not a password of anyone"))
        yield


@pytest.fixture
def http(server: BinManagerApp) -> Iterator[httpx.Client]:
    """A plain client for the app's API (an agent's view: no admin token)."""
    with server.client(base_url=server.api) as client:
        yield client


@pytest.fixture
def name() -> str:
    """A bin name no other test uses."""
    return f"app-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def node() -> str:
    return f"host-{uuid.uuid4().hex[:10]}"
