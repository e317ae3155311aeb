"""Keepalives of known nodes are answered from memory and their last-seen time written in
batches, within a second by default. At a stop and a kill -9:
tests/integration/server/test_heartbeats.py."""

from __future__ import annotations

import time

from tests.support.answers import node_info
from tests.support.inprocess import BinManagerApp, BinManagerAppFactory
from tests.support.procs import wait_until


def _last_seen(server: BinManagerApp, node: str) -> str:
    answer = server.admin_get(f"/nodes/{node}")
    assert answer.status_code == 200, answer.text
    seen: str = answer.json()["data"]["lastSeen"]
    return seen


def _keepalive(server: BinManagerApp, node: str) -> None:
    with server.client() as http:
        answer = http.get(f"{server.api}/keepalive", params={"nodeName": node})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"nodeName": node, "status": "active"}


def _register(server: BinManagerApp, node: str) -> str:
    with server.client() as http:
        assert http.post(f"{server.api}/keepalive", json=node_info(node)).status_code == 200
    return _last_seen(server, node)


def test_last_seen_follows_keepalives_within_the_flush_interval(
    bin_manager_app_factory: BinManagerAppFactory,
) -> None:
    bin_manager = bin_manager_app_factory(node_auth="migrate")  # writes without a credential
    registered = _register(bin_manager, "beat-01")
    time.sleep(1.1)  # last_seen has one-second resolution
    _keepalive(bin_manager, "beat-01")
    wait_until(lambda: _last_seen(bin_manager, "beat-01") > registered, 10, "last seen written")
