"""The fast path (server/hotpath/fastpath.py) answers the per-tick GETs exactly as the
FastAPI routes do, and hands everything unusual on to them.

Two real servers share one SQLite database: one as shipped, one with
BIN_MANAGER_FAST_PATH=false (the reference). Each request goes to both, the fast one
first twice (the first fills its caches), and the answers must be equal: status, body
bytes and every header but Date.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.answers import node_info
from tests.support.server import BinManager, BinManagerFactory

AGENT_TOKEN = "agent-token-for-the-fast-path-tests"


class Pair:
    def __init__(self, fast: BinManager, reference: BinManager, headers: dict[str, str]) -> None:
        self.fast = fast
        self.reference = reference
        self.http = httpx.Client(headers=headers, timeout=30)

    def same(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET `path` from both; the fast server's answer, checked equal to the reference."""
        self.http.get(f"{self.fast.url}{path}", **kwargs)
        mine = self.http.get(f"{self.fast.url}{path}", **kwargs)
        theirs = self.http.get(f"{self.reference.url}{path}", **kwargs)
        assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), path
        assert _headers(mine) == _headers(theirs), path
        return mine


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k != "date")


@pytest.fixture(params=[None, AGENT_TOKEN], ids=["open", "agent-token"])
def pair(
    request: pytest.FixtureRequest, bin_manager_factory: BinManagerFactory, tmp_path: Path
) -> Iterator[Pair]:
    url = f"sqlite+pysqlite:///{tmp_path / 'shared.sqlite3'}"
    token = request.param
    fast = bin_manager_factory(database_url=url, agent_token=token)
    reference = bin_manager_factory(
        database_url=url, agent_token=token, extra_env={"BIN_MANAGER_FAST_PATH": "false"}
    )
    for name, arch in (("app", "x86_64"), ("app", "aarch64"), ("tool", "x86_64")):
        fast.publish(name, f"{name} for {arch}".encode(), arch=arch)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    pair = Pair(fast, reference, headers)
    try:
        registered = pair.http.post(f"{fast.api}/keepalive", json=node_info("web-01"))
        assert registered.status_code == 200
        yield pair
    finally:
        pair.http.close()


SAME_ANSWER = [
    "/api/v1/keepalive?nodeName=web-01",
    "/api/v1/bins?nodeName=web-01&arch=x86_64",
    "/api/v1/bins?arch=arm64",
    "/api/v1/bins/app?nodeName=web-01&arch=x86_64",
    "/api/v1/bins/app?arch=AARCH64",
    # Handed on by the fast path: the answers stay the routes' own.
    "/api/v1/keepalive?nodeName=nobody",
    "/api/v1/keepalive?nodeName=",
    "/api/v1/keepalive?nodeName=a%00b",
    "/api/v1/keepalive?nodeName=web-01&nodeName=web-02",
    "/api/v1/bins?nodeName=web-01",
    "/api/v1/bins?arch=sparc",
    "/api/v1/bins/app?arch=x86_64&arch=aarch64",
    "/api/v1/bins/missing?arch=x86_64",
    "/api/v1/bins/tool?arch=aarch64",
    "/api/v1/bins/app/progress?arch=x86_64",
]


def test_answers_equal_the_routes_answers(pair: Pair) -> None:
    for path in SAME_ANSWER:
        pair.same(path)
    assert pair.same(SAME_ANSWER[0]).json()["data"] == {"nodeName": "web-01", "status": "active"}


def test_batch_etag_gives_304_on_both(pair: Pair) -> None:
    path = "/api/v1/bins?nodeName=web-01&arch=x86_64"
    first = pair.same(path)
    assert first.status_code == 200
    assert set(first.json()["data"]["bins"]) == {"app", "tool"}
    etag = first.headers["etag"]
    not_modified = pair.same(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert pair.same(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_publish_is_answered_at_once(pair: Pair) -> None:
    before = pair.same("/api/v1/bins/app?arch=x86_64").json()["data"]["sha256"]
    sha = pair.fast.publish("app", b"app version two")
    assert sha == hashlib.sha256(b"app version two").hexdigest() != before
    one = pair.http.get(f"{pair.fast.api}/bins/app", params={"arch": "x86_64"})
    batch = pair.http.get(f"{pair.fast.api}/bins", params={"arch": "x86_64"})
    assert one.json()["data"]["sha256"] == batch.json()["data"]["bins"]["app"] == sha


def test_a_paused_bin_is_answered_per_node(pair: Pair) -> None:
    pair.same("/api/v1/bins/app?nodeName=web-01&arch=x86_64")
    pair.fast.pause("app")
    pair.same("/api/v1/bins/app?nodeName=web-01&arch=x86_64")
    pair.same("/api/v1/bins?nodeName=web-01&arch=x86_64")


def test_withdrawn_releases_are_answered_alike(pair: Pair) -> None:
    # Pinned before either server asked about `tool`: neither holds an older answer.
    first = pair.fast.publish("tool", b"tool for x86_64")  # the fixture's: latest again
    second = pair.fast.publish("tool", b"tool version two")
    third = pair.fast.publish("tool", b"tool version three")
    pair.fast.pin("tool", first)
    one = pair.same("/api/v1/bins/tool?nodeName=web-01&arch=x86_64")
    assert one.json()["data"] == {
        "sha256": first,
        "version": "latest",
        "withdrawn": [third, second],
    }
    batch = pair.same("/api/v1/bins?nodeName=web-01&arch=x86_64")
    assert batch.json()["data"]["withdrawn"] == {"tool": [third, second]}
    not_modified = pair.same(
        "/api/v1/bins?nodeName=web-01&arch=x86_64", headers={"If-None-Match": batch.headers["etag"]}
    )
    assert not_modified.status_code == 304
    # Nothing withdrawn for `app`: its answer keeps the original shape, on both.
    assert "withdrawn" not in pair.same("/api/v1/bins/app?arch=x86_64").json()["data"]


def test_a_wrong_or_missing_agent_token_is_refused(bin_manager_factory: BinManagerFactory) -> None:
    server = bin_manager_factory(agent_token=AGENT_TOKEN)
    server.publish("app", b"app")
    url = f"{server.api}/bins"
    with httpx.Client(timeout=30) as http:
        good = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        assert http.get(url, params={"arch": "x86_64"}, headers=good).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": AGENT_TOKEN}):
            answer = http.get(url, params={"arch": "x86_64"}, headers=headers)
            assert answer.status_code == 401, headers
        admin = {"Authorization": f"bearer {server.admin_token}"}
        assert http.get(url, params={"arch": "x86_64"}, headers=admin).status_code == 200
