"""A staged rollout served by several processes: `serve --workers 2` on SQLite and two
replicas on one PostgreSQL. Whichever process answers, a node is told the same release;
each wave is promoted once; a report in another node's name is refused and counts for
nothing. The nodes are simulated over the wire API (the real agents' rollout tests are
in tests/integration/rollouts/)."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import httpx

from tests.integration.fleet.conftest import Replicas
from tests.support.procs import wait_until
from tests.support.server import BinManager, BinManagerFactory

NODES = [f"web-{n}" for n in range(6)]
FAST = {"BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS": "0.3"}
STALE = 1.2  # hotpath/pointers.py: each process caches a pointer for up to 1 s


class Node:
    """One simulated node: its own token once enrolled, its reports and polls."""

    def __init__(self, api: str, name: str, token: str | None = None) -> None:
        self.api = api
        self.name = name
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else self._headers()
        with httpx.Client(timeout=10) as http:  # a new connection: any process may answer
            return http.post(f"{self.api}{path}", json=body, headers=headers).status_code

    def info(self) -> dict[str, str]:
        return {"cpuArch": "x86_64", "osRelease": "Debian 12", "nodeName": self.name,
                "binProxyVersion": "1"}  # fmt: skip

    def running(self, sha: str, token: str | None = None) -> int:
        body = {"nodeName": self.name, "binName": "web", "sha256": sha, "version": "latest"}
        return self.post("/bins/web", body, token)

    def succeeded(self, sha: str, token: str | None = None) -> int:
        body = {"nodeName": self.name, "binName": "web", "targetHash": sha,
                "processingTime": 1, "status": "success"}  # fmt: skip
        status = self.post("/bins/web/progress", body, token)
        return status if status != 200 else self.running(sha, token)

    def told(self) -> str:
        with httpx.Client(timeout=10) as http:
            one = http.get(f"{self.api}/bins/web", params={"nodeName": self.name, "arch": "x86_64"})
            batch = http.get(f"{self.api}/bins", params={"nodeName": self.name, "arch": "x86_64"})
            http.get(
                f"{self.api}/keepalive", params={"nodeName": self.name}, headers=self._headers()
            )
        sha: str = one.json()["data"]["sha256"]
        assert batch.json()["data"]["bins"]["web"] == sha, "the batch poll disagrees"
        return sha


def _status(server: BinManager) -> dict[str, Any]:
    response = server.admin_get("/bins/web/rollout")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _steps(server: BinManager, kind: str) -> int:
    events = server.admin_get("/events").json()["data"]
    return sum(1 for event in events if event["kind"] == kind)


def _walk(servers: list[BinManager], nodes: list[Node], v1: str, v2: str) -> None:
    """Set a staged policy, publish v2 and walk it through its waves, checking each answer."""
    first = servers[0]
    policy = {"canary": "1", "waves": "50%,100%", "bakeSeconds": 1, "maxFailures": "1"}
    assert first._admin("PUT", "/bins/web/rollout/policy", json=policy).status_code == 200
    assert first.publish("web", b"web v2") == v2
    waves = [
        [node["name"] for node in wave["nodes"]] for wave in _status(first)["rollouts"][0]["waves"]
    ]
    by_name = {node.name: node for node in nodes}
    for index, wave in enumerate(waves):
        later = {name for other in waves[index + 1 :] for name in other}
        time.sleep(STALE)  # another process's cached pointer may be this much older
        for _ in range(3):  # new connections: whichever process answers, the same
            for node in nodes:
                assert node.told() == (v1 if node.name in later else v2), node.name
        if index == 0:
            # Another node's credential cannot report the canary's success for it.
            stranger = by_name[waves[1][0]]
            if stranger.token is not None:
                assert by_name[wave[0]].succeeded(v2, stranger.token) == 403
                time.sleep(2)
                assert _status(first)["rollouts"][0]["wave"] == 0
        for name in wave:
            assert by_name[name].succeeded(v2) == 200

        def next_wave(index: int = index) -> bool:
            for node in nodes:
                node.told()  # keep calling: a silent node would fail its bake
            rollout = _status(servers[-1])["rollouts"][0]
            return bool(rollout["wave"] > index or rollout["state"] == "completed")

        wait_until(next_wave, 30, f"the rollout past wave {index}")
    assert _status(first)["state"] == "completed"
    time.sleep(STALE)
    assert {node.told() for node in nodes} == {v2}
    for server in servers:  # every process's view, one database
        assert _steps(server, "rollout-promote") == len(waves) - 1
        assert _steps(server, "rollout-complete") == 1


def test_workers_tell_each_node_the_same_and_promote_each_wave_once(
    bin_manager_factory: BinManagerFactory,
) -> None:
    enrolment = secrets.token_urlsafe(24)
    server = bin_manager_factory(
        extra_args=["--workers", "2"],
        extra_env=FAST,
        node_auth="required",
        enrolment_token=enrolment,
    )
    nodes = []
    for name in NODES:
        node = Node(server.api, name, secrets.token_urlsafe(32))
        body = {**node.info(), "nodeToken": node.token}
        assert node.post("/enrol", body, enrolment) in (200, 201)
        assert node.post("/keepalive", node.info()) == 200
        nodes.append(node)
    v1 = server.publish("web", b"web v1")
    for node in nodes:
        assert node.running(v1) == 200
    _walk([server], nodes, v1, hashlib.sha256(b"web v2").hexdigest())


def test_replicas_on_postgresql_tell_each_node_the_same(
    postgres_url: str, replicas: Replicas
) -> None:
    servers = replicas(postgres_url, 2, FAST)
    nodes = [Node(servers[index % 2].api, name) for index, name in enumerate(NODES)]
    for node in nodes:
        assert node.post("/keepalive", node.info()) == 200
    v1 = servers[0].publish("web", b"web v1")
    for node in nodes:
        assert node.running(v1) == 200
    _walk(servers, nodes, v1, hashlib.sha256(b"web v2").hexdigest())


def test_a_bin_without_a_policy_follows_the_servers_default(
    bin_manager_factory: BinManagerFactory,
) -> None:
    staged = "--canary 1 --waves 100% --bake 3600 --max-failures 1"
    server = bin_manager_factory(extra_env={**FAST, "BIN_MANAGER_DEFAULT_ROLLOUT": staged})
    nodes = [Node(server.api, name) for name in NODES[:3]]
    for node in nodes:
        assert node.post("/keepalive", node.info()) == 200
    v1 = server.publish("web", b"web v1")  # a first release: every node at once
    assert {node.told() for node in nodes} == {v1}
    for node in nodes:
        assert node.running(v1) == 200
    v2 = server.publish("web", b"web v2")
    told = [node.told() for node in nodes]
    assert sorted(told) == sorted([v2, v1, v1])  # the canary only
    status = _status(server)
    assert status["policies"] == {}
    assert status["defaultPolicy"]["describe"] == staged
    assert status["rollouts"][0]["state"] == "rolling"
