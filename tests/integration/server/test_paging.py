"""`bin-manager list nodes` follows every page or gives one, against a real server holding
2,345 nodes (SQLite and PostgreSQL). The admin API's paging: tests/routes/test_paging.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.server.test_cli import cli
from tests.support.many_nodes import database_url, insert_nodes, node_name
from tests.support.postgres import PostgresServer
from tests.support.server import BinManager

COUNT = 2345
SHAS = ["a" * 64, "b" * 64]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BinManager]:
    """A server whose database holds COUNT nodes, each running one of SHAS of `tool`."""
    workdir = tmp_path_factory.mktemp(f"paging-{request.param}")
    pg: PostgresServer | None = None
    database = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        database = pg.create_database()
    url = pg.url(database) if pg and database else database_url(workdir / "data")
    insert_nodes(url, COUNT, runs={"tool": SHAS})
    manager = BinManager(workdir, database_url=url if pg else None)
    try:
        yield manager.start()
    finally:
        manager.stop()
        if pg and database:
            pg.drop_database(database)


def _names(rows: list[dict[str, str]]) -> list[str]:
    return [row["nodeName"] for row in rows]


def test_cli_list_nodes_follows_every_page_or_gives_one(fleet: BinManager) -> None:
    listed = cli(fleet, "list", "nodes", "--json")
    assert listed.returncode == 0, listed.stderr
    assert _names(json.loads(listed.stdout)) == [node_name(i) for i in range(COUNT)]

    one = cli(fleet, "list", "nodes", "--json", "--limit", "5", "--after", node_name(10))
    assert one.returncode == 0, one.stderr
    assert _names(json.loads(one.stdout)) == [node_name(i) for i in range(11, 16)]
    assert f"more: --after {node_name(15)}" in one.stderr

    of_bin = cli(fleet, "list", "nodes", "tool", "--json", "--prefix", "node-0023")
    assert of_bin.returncode == 0, of_bin.stderr
    assert _names(json.loads(of_bin.stdout)) == [node_name(i) for i in range(2300, COUNT)]

    refused = cli(fleet, "list", "nodes", "--limit", "5000")
    assert refused.returncode != 0
    assert "422" in refused.stderr
