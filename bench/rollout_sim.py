"""A simulated fleet for the staged-rollout benchmarks (bench/fleet_rollout.py).

The fleet is inserted in bulk before the server starts (tests/support/many_nodes.py:
nodes, and a NodeBin row per bin, so every node is a member of the next rollout), then
driven by `LeanAgent`s: bench/fleet_agents.py's SimAgent on one shared pool of kept-alive
connections, whose "install" is the reports alone (no download): progress `success` then
POST /bins, or progress `failed` for a release the ledger calls bad. The admin calls the
benchmarks make (policy, status, promote) are here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from tests.support.many_nodes import database_url, insert_nodes, node_name
from tests.support.server import BinManager

from bench.fleet_agents import SimAgent, Stats
from bench.harness import Workspace

# Kept-alive connections shared by the whole simulated fleet: enough that requests the
# server keeps waiting (writes in a storm) never hold up the others' keepalives and polls.
POOL = 1024


def content(bin_name: str, tag: str) -> bytes:
    """A tiny release: the agents never download it, only its sha256 matters."""
    return f"{bin_name} release {tag}\n".encode()


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Ledger:
    """What the fleet was told and ran: (bin, sha) → node → first monotonic time."""

    bad: set[str] = field(default_factory=set)  # releases whose install "fails"
    told: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    ran: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    @staticmethod
    def record(
        book: dict[tuple[str, str], dict[str, float]], key: tuple[str, str], node: str
    ) -> None:
        """The first time `node` was seen at `key` (a later sighting changes nothing)."""
        book.setdefault(key, {}).setdefault(node, time.monotonic())

    def told_count(self, bin_name: str, sha: str) -> int:
        return len(self.told.get((bin_name, sha), {}))

    def ran_count(self, bin_name: str, sha: str) -> int:
        return len(self.ran.get((bin_name, sha), {}))


class LeanAgent(SimAgent):
    """A node that keepalives, polls (GET /bins, If-None-Match) and reports, on `http`."""

    def __init__(
        self,
        api: str,
        name: str,
        installed: dict[str, str],
        stats: Stats,
        tick: float,
        http: aiohttp.ClientSession,
        ledger: Ledger,
    ) -> None:
        super().__init__(api, name, installed, stats, tick, registered=True)
        self.http = http
        self.ledger = ledger
        self.failed: set[str] = set()  # as the agent's history: a failed sha is not retried

    async def run_tick(self) -> None:
        http = self.http
        if not await self._keepalive(http):
            return
        headers = {"If-None-Match": self.etag} if self.etag else {}
        polled = await self._call(http, "GET", self.poll_path, headers=headers)
        if polled is None:
            return
        if polled.status == 200:
            self.wanted = dict(json.loads(polled.body)["data"]["bins"])
            self.etag = polled.headers.get("ETag")
        for name, sha in sorted(self.wanted.items()):
            if self.installed.get(name) != sha and sha not in self.failed:
                await self._upgrade(http, name, sha)
        self.stats.ticks += 1

    async def _upgrade(self, http: aiohttp.ClientSession, name: str, sha: str) -> None:
        self.ledger.record(self.ledger.told, (name, sha), self.name)
        progress = {"nodeName": self.name, "binName": name, "targetHash": sha,
                    "processingTime": 0, "status": "success"}  # fmt: skip
        if sha in self.ledger.bad:
            progress |= {"status": "failed", "reason": "bench: injected bad release"}
            self.failed.add(sha)
            await self._call(http, "POST", f"/bins/{name}/progress", json=progress)
            return
        if await self._call(http, "POST", f"/bins/{name}/progress", json=progress) is None:
            return
        report = {"nodeName": self.name, "binName": name, "sha256": sha, "version": "latest"}
        if await self._call(http, "POST", f"/bins/{name}", json=report) is None:
            return
        self.installed[name] = sha
        self.ledger.record(self.ledger.ran, (name, sha), self.name)


def shared_session() -> aiohttp.ClientSession:
    """The fleet's one client: POOL kept-alive connections, a generous timeout."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL), timeout=aiohttp.ClientTimeout(total=60)
    )


def start_fleet(
    ws: Workspace, label: str, nodes: int, runs: dict[str, str], env: dict[str, str]
) -> BinManager:
    """`nodes` nodes (node-000000…) running `runs` (bin → sha), then the server on them."""
    workdir = ws.path(label)
    insert_nodes(database_url(workdir / "data"), nodes, runs={b: [s] for b, s in runs.items()})
    return ws.track(BinManager(workdir, extra_env=env)).start()


def fleet_names(nodes: int) -> list[str]:
    return [node_name(i) for i in range(nodes)]


def route_latencies(log: Path, since: float) -> str:
    """Per route of the access log lines stamped after `since` (time.time()): answers,
    p50 and p99 of the server's own duration."""
    durations: dict[str, list[float]] = {}
    with log.open(errors="replace") as lines:
        for line in lines:
            start = line.find('{"ts"')
            if start < 0:
                continue
            entry = json.loads(line[start:])
            if entry["ts"] >= since:
                durations.setdefault(entry["route"], []).append(float(entry["duration_ms"]))
    shown = []
    for route, values in sorted(durations.items(), key=lambda item: -len(item[1])):
        values.sort()
        p50, p99 = values[len(values) // 2], values[int(0.99 * len(values))]
        shown.append(f"{route} {len(values)} p50 {p50:.1f} p99 {p99:.1f} ms")
    return "; ".join(shown)


def _checked(answer: httpx.Response) -> Any:
    answer.raise_for_status()
    body = answer.json()
    if body.get("code") != 0:
        raise RuntimeError(f"{answer.request.method} {answer.request.url}: {body}")
    return body.get("data")


def set_policy(bm: BinManager, bin_name: str, policy: dict[str, Any]) -> None:
    """PUT /admin/bins/{bin}/rollout/policy (used from the bin's next publish)."""
    with bm.client(headers=bm.admin_headers) as http:
        _checked(http.put(f"{bm.api}/admin/bins/{bin_name}/rollout/policy", json=policy))


def rollout(bm: BinManager, bin_name: str) -> dict[str, Any]:
    """The bin's newest rollout (status data.rollouts[0]); {} when it never had one."""
    with bm.client(headers=bm.admin_headers) as http:
        data = _checked(http.get(f"{bm.api}/admin/bins/{bin_name}/rollout"))
    found: list[dict[str, Any]] = data["rollouts"]
    return found[0] if found else {}


def promote(bm: BinManager, bin_name: str) -> None:
    with bm.client(headers=bm.admin_headers) as http:
        _checked(http.post(f"{bm.api}/admin/bins/{bin_name}/rollout/promote"))


async def wait_for(check: Callable[[], bool], deadline: float, every: float = 0.25) -> bool:
    """Until `check()` is true or the monotonic `deadline`; whether it came true."""
    while not check():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True
