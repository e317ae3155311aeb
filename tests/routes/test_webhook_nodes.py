"""Webhooks that nodes cause, in the app with a real receiver on 127.0.0.1: a node's chat
markup arrives escaped, and a flood of failed reports becomes a few deliveries that count
it all (issue 25, item 7). That a receiver's secret URL never reaches the server's log
file: tests/integration/server/test_webhook_nodes.py."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.server.test_webhooks import Receiver
from tests.support.admin import AdminCalls
from tests.support.answers import envelope, node_info
from tests.support.inprocess import BinManagerApp, BinManagerAppFactory
from tests.support.postgres import PostgresServer
from tests.support.procs import free_port, wait_until

MARKUP = (
    "watch: <!channel> @here web is down, see <https://evil.example|the dashboard> "
    "or [this](https://evil.example) & act"
)
J = "\u2060"  # the word joiner that breaks a Mattermost mention or Markdown link


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's webhook sender (httpx) honours proxy variables: the receiver is local."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite in the data dir), or a PostgreSQL database for a "postgres" param."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    name = pg.create_database()
    yield pg.url(name)
    pg.drop_database(name)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port()).start()
    yield server
    server.stop()


def hooked(
    factory: BinManagerAppFactory, url: str, database: str | None = None, **settings: Any
) -> tuple[BinManagerApp, str]:
    """An app (node credentials required) posting to `url`, with bin `web` published."""
    server = factory(node_auth="required", database_url=database, webhook_urls=url, **settings)
    return server, server.publish("web", b"\x7fELF web v1")


def enrolled(server: AdminCalls, http: httpx.Client, node: str) -> dict[str, str]:
    """Enrol `node` with the enrolment token; the headers its agent writes with."""
    token = secrets.token_urlsafe(32)
    body = {**node_info(node), "nodeToken": token}
    auth = {"Authorization": f"Bearer {server.enrolment_token}"}
    assert http.post("/enrol", json=body, headers=auth).status_code == 201
    headers = {"Authorization": f"Bearer {token}"}
    envelope(http.post("/keepalive", json=node_info(node), headers=headers), 200)
    return headers


def report_failed(
    http: httpx.Client, headers: dict[str, str], node: str, sha: str, reason: str
) -> None:
    progress = {"nodeName": node, "binName": "web", "targetHash": sha,
                "processingTime": 3, "status": "failed", "reason": reason}  # fmt: skip
    envelope(http.post("/bins/web/progress", json=progress, headers=headers), 200)


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    """The node-rollback events received (a publish may announce a rollout too)."""
    got = [json.loads(request.body) for request in receiver.received()]
    return [body for body in got if body["event"] == "node-rollback"]


def events_in(receiver: Receiver) -> int:
    """The reports the deliveries so far stand for: each one, and what it folded."""
    return sum(1 + body.get("folded", {}).get("count", 0) for body in bodies(receiver))


def metric(server: AdminCalls, name: str) -> float:
    with server.client() as http:
        answer = http.get(f"{server.url}/metrics", headers=server.admin_headers)
    assert answer.status_code == 200, answer.text
    found = re.search(rf"^{name} (\S+)$", answer.text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_a_nodes_chat_markup_arrives_escaped_and_only_data_holds_it_raw(
    bin_manager_app_factory: BinManagerAppFactory, receiver: Receiver
) -> None:
    server, sha = hooked(bin_manager_app_factory, receiver.url())
    with server.client(base_url=server.api) as http:
        headers = enrolled(server, http, "web-01")
        report_failed(http, headers, "web-01", sha, MARKUP)
        wait_until(lambda: len(bodies(receiver)) == 1, 30, "the node-rollback delivery")
    (body,) = bodies(receiver)
    assert body["event"] == "node-rollback"
    assert body["text"] == (
        f"web: web-01 reported {sha[:12]} failed: watch: &lt;!channel&gt; @{J}here web is "
        f"down, see &lt;https://evil.example|the dashboard&gt; or [this]{J}(https://evil.example)"
        " &amp; act"
    )
    assert "<" not in body["text"]
    assert body["data"]["reason"] == MARKUP  # a program reading the JSON gets it as sent
    assert body["data"]["nodeName"] == "web-01"


@pytest.mark.parametrize(
    "database",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_fifty_failed_reports_in_a_second_make_a_few_deliveries_that_count_them(
    database: str | None, bin_manager_app_factory: BinManagerAppFactory, receiver: Receiver
) -> None:
    server, sha = hooked(
        bin_manager_app_factory,
        receiver.url(),
        database=database,
        webhook_repeat_seconds=3,
    )
    with server.client(base_url=server.api) as http:
        headers = enrolled(server, http, "web-01")
        for _ in range(50):
            report_failed(http, headers, "web-01", sha, MARKUP)
    wait_until(lambda: events_in(receiver) >= 50, 60, "deliveries standing for 50 reports")
    got = bodies(receiver)
    assert events_in(receiver) == 50  # each report counted once: none lost, none twice
    assert len(got) <= 4, [body["text"] for body in got]
    summaries = [body for body in got if "folded" in body]
    assert summaries
    for body in summaries:
        count = body["folded"]["count"]
        assert body["folded"]["scope"] == "repeat"
        assert body["text"].endswith(f"&amp; act (and {count} more like it)")
        assert body["data"]["reason"] == MARKUP
    folded = sum(body["folded"]["count"] for body in summaries)
    assert metric(server, "bin_manager_webhook_folded") == folded == 50 - len(got)
    assert metric(server, "bin_manager_webhook_held") == 0


def test_a_flood_of_distinct_reports_is_limited_per_node_and_per_bin(
    bin_manager_app_factory: BinManagerAppFactory, receiver: Receiver
) -> None:
    server, sha = hooked(
        bin_manager_app_factory,
        receiver.url(),
        webhook_per_node=3,
        webhook_per_bin=5,
        webhook_period_seconds=4,
    )
    with server.client(base_url=server.api) as http:
        flooder = enrolled(server, http, "web-01")
        others = {f"web-{n:02}": enrolled(server, http, f"web-{n:02}") for n in range(2, 9)}
        for number in range(20):  # every reason differs: no two are repeats
            report_failed(http, flooder, "web-01", sha, f"watch: attempt {number} failed")
        for node, headers in others.items():
            report_failed(http, headers, node, sha, "watch: web exited")
    wait_until(lambda: events_in(receiver) >= 27, 60, "deliveries standing for 27 reports")
    got = bodies(receiver)
    assert events_in(receiver) == 27
    assert len(got) <= 10, [body["text"] for body in got]
    summaries = [body for body in got if "folded" in body]
    assert summaries
    for body in summaries:
        count, scope = body["folded"]["count"], body["folded"]["scope"]
        where = {"node": "from web-01", "bin": "of web", "repeat": "like it"}[scope]
        assert body["text"].endswith(f"(and {count} more {where})")
    folded = sum(body["folded"]["count"] for body in summaries)
    assert metric(server, "bin_manager_webhook_folded") == folded == 27 - len(got)
