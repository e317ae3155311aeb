"""Paged node listings: the admin API (limit, after, prefix; total, next, Link) and
`bin-manager list nodes`, against a real server holding 2,345 nodes (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.server.checks import envelope
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


def test_pages_follow_one_another_without_repeats(fleet: BinManager) -> None:
    first = fleet.admin_get("/nodes")
    body = envelope(first, 200)
    assert _names(body["data"]) == [node_name(i) for i in range(100)]  # default limit 100
    assert (body["total"], body["next"]) == (COUNT, node_name(99))
    assert first.headers["link"].endswith(f'?after={node_name(99)}>; rel="next"')

    second = envelope(fleet.admin_get(f"/nodes?after={body['next']}"), 200)
    assert _names(second["data"]) == [node_name(i) for i in range(100, 200)]

    seen: list[str] = []
    after = ""
    while True:
        page = envelope(fleet.admin_get(f"/nodes?limit=1000&after={after}"), 200)
        seen += _names(page["data"])
        assert page["total"] == COUNT
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == [node_name(i) for i in range(COUNT)]  # each once, in order
    assert "link" not in fleet.admin_get(f"/nodes?after={node_name(COUNT - 2)}").headers


def test_prefix_and_a_bins_nodes_are_paged_too(fleet: BinManager) -> None:
    page = envelope(fleet.admin_get("/nodes?prefix=node-0012&limit=60"), 200)
    assert _names(page["data"]) == [node_name(i) for i in range(1200, 1260)]
    assert (page["total"], page["next"]) == (100, node_name(1259))
    last = envelope(fleet.admin_get(f"/nodes?prefix=node-0012&after={page['next']}"), 200)
    assert _names(last["data"]) == [node_name(i) for i in range(1260, 1300)]
    assert last["next"] is None

    runs = envelope(fleet.admin_get(f"/bins/tool/nodes?limit=3&after={node_name(9)}"), 200)
    assert [(r["nodeName"], r["sha256"]) for r in runs["data"]] == [
        (node_name(10), SHAS[0]),
        (node_name(11), SHAS[1]),
        (node_name(12), SHAS[0]),
    ]
    assert (runs["total"], runs["next"]) == (COUNT, node_name(12))


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=-5", "limit=many", "after=a%20b", "after=..", "prefix=a/b"],
)
def test_out_of_range_paging_is_refused_with_422(fleet: BinManager, query: str) -> None:
    for path in ("/nodes", "/bins/tool/nodes"):
        envelope(fleet.admin_get(f"{path}?{query}"), 422)


def test_cli_list_nodes_follows_every_page_or_gives_one(fleet: BinManager) -> None:
    listed = cli(fleet, "list", "nodes")
    assert listed.returncode == 0, listed.stderr
    assert _names(json.loads(listed.stdout)) == [node_name(i) for i in range(COUNT)]

    one = cli(fleet, "list", "nodes", "--limit", "5", "--after", node_name(10))
    assert one.returncode == 0, one.stderr
    assert _names(json.loads(one.stdout)) == [node_name(i) for i in range(11, 16)]
    assert f"more: --after {node_name(15)}" in one.stderr

    of_bin = cli(fleet, "list", "nodes", "tool", "--prefix", "node-0023")
    assert of_bin.returncode == 0, of_bin.stderr
    assert _names(json.loads(of_bin.stdout)) == [node_name(i) for i in range(2300, COUNT)]

    refused = cli(fleet, "list", "nodes", "--limit", "5000")
    assert refused.returncode != 0
    assert "422" in refused.stderr
