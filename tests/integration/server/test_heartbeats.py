"""Keepalives of known nodes are answered from memory and their last-seen time written in
batches: at a graceful stop, and (as documented) lost by a kill -9 for at most one flush
interval, never the registration itself. Written within a second while serving:
tests/routes/test_heartbeats.py."""

from __future__ import annotations

import time

import httpx

from tests.support.answers import node_info
from tests.support.server import BinManager, BinManagerFactory


def _last_seen(server: BinManager, node: str) -> str:
    answer = server.admin_get(f"/nodes/{node}")
    assert answer.status_code == 200, answer.text
    seen: str = answer.json()["data"]["lastSeen"]
    return seen


def _keepalive(server: BinManager, node: str) -> None:
    with httpx.Client(timeout=30) as http:
        answer = http.get(f"{server.api}/keepalive", params={"nodeName": node})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"nodeName": node, "status": "active"}


def _register(server: BinManager, node: str) -> str:
    with httpx.Client(timeout=30) as http:
        assert http.post(f"{server.api}/keepalive", json=node_info(node)).status_code == 200
    return _last_seen(server, node)


def test_a_graceful_stop_writes_pending_heartbeats_and_a_crash_loses_only_those(
    bin_manager_factory: BinManagerFactory,
) -> None:
    server = bin_manager_factory(extra_env={"BIN_MANAGER_HEARTBEAT_FLUSH_SECONDS": "300"})
    registered = _register(server, "beat-02")
    time.sleep(1.1)
    _keepalive(server, "beat-02")
    assert _last_seen(server, "beat-02") == registered  # in memory until the next flush
    server.restart()  # SIGTERM: the shutdown writes it
    assert _last_seen(server, "beat-02") > registered

    time.sleep(1.1)
    _keepalive(server, "beat-02")  # the first after a start asks the database: written
    written = _last_seen(server, "beat-02")
    time.sleep(1.1)
    _keepalive(server, "beat-02")  # now known: kept in memory
    server.kill()
    server.start()
    assert _last_seen(server, "beat-02") == written  # the one refresh in memory is lost
    _keepalive(server, "beat-02")  # the node itself is still known
