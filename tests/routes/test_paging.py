"""Paged node listings in the admin API (limit, after, prefix; total, next, Link), on an app
whose database holds 2,345 nodes (SQLite and PostgreSQL). `bin-manager list nodes`:
tests/integration/server/test_paging.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.answers import envelope
from tests.support.inprocess import BinManagerApp
from tests.support.many_nodes import database_url, insert_nodes, node_name
from tests.support.postgres import PostgresServer

COUNT = 2345
SHAS = ["a" * 64, "b" * 64]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BinManagerApp]:
    """An app whose database holds COUNT nodes, each running one of SHAS of `tool`."""
    workdir = tmp_path_factory.mktemp(f"paging-{request.param}")
    pg: PostgresServer | None = None
    database = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        database = pg.create_database()
    url = pg.url(database) if pg and database else database_url(workdir / "data")
    insert_nodes(url, COUNT, runs={"tool": SHAS})
    manager = BinManagerApp(workdir, database_url=url if pg else None)
    try:
        yield manager.start()
    finally:
        manager.stop()
        if pg and database:
            pg.drop_database(database)


def _names(rows: list[dict[str, str]]) -> list[str]:
    return [row["nodeName"] for row in rows]


def test_pages_follow_one_another_without_repeats(fleet: BinManagerApp) -> None:
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


def test_prefix_and_a_bins_nodes_are_paged_too(fleet: BinManagerApp) -> None:
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
def test_out_of_range_paging_is_refused_with_422(fleet: BinManagerApp, query: str) -> None:
    for path in ("/nodes", "/bins/tool/nodes"):
        envelope(fleet.admin_get(f"{path}?{query}"), 422)
