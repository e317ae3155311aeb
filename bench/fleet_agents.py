"""Simulated agents for the fleet benchmark: asyncio tasks speaking the agent's protocol.

Each tick, like `ansible-proxy run` from cron, opens one new connection and on it asks:
keepalive (POST the first time, GET after), one batch poll with If-None-Match, and for
every bin whose sha changed: progress, download (hash checked), progress, report.
The client is aiohttp, not the agent's httpx: it costs the load generator about a
seventh of the CPU per request (0.17 against 1.2 ms here), so the simulator is not what
limits the fleet it can simulate on the server's machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

ARCH = "x86_64"
JITTER = 0.1
ENROL_PER_ADDRESS = 25  # under the server's default enrolment burst (30) per address


@dataclass
class Stats:
    """Client-side latency of every request, errors, ticks done, reports of a watched sha."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    ticks: int = 0
    watch: tuple[str, str] | None = None  # (bin, sha) whose reports are timed
    reported: dict[str, float] = field(default_factory=dict)  # node → monotonic time

    def reset(self) -> None:
        self.latencies.clear()
        self.errors = 0
        self.error_samples.clear()
        self.ticks = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class SimAgent:
    """One simulated node, already running `installed` (bin → sha) when it starts."""

    def __init__(
        self,
        api: str,
        name: str,
        installed: dict[str, str],
        stats: Stats,
        tick: float,
        headers: dict[str, str] | None = None,
        registered: bool = False,
    ) -> None:
        self.api = api
        self.name = name
        self.installed = dict(installed)
        self.stats = stats
        self.tick = tick
        self.headers = headers or {}
        self.registered = registered  # True: only GET /keepalive, as a known node does
        self.etag: str | None = None
        self.wanted: dict[str, str] = {}
        self.keepalive_path = f"/keepalive?nodeName={name}"  # names are [a-z0-9-]: no quoting
        self.poll_path = f"/bins?nodeName={name}&arch={ARCH}"

    async def _call(
        self, http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> Answer | None:
        started = time.perf_counter()
        try:
            async with http.request(method, f"{self.api}{path}", **kwargs) as response:
                answer = Answer(response.status, dict(response.headers), await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.error(f"{method} {path}: {type(exc).__name__}")
            return None
        self.stats.latencies.append(time.perf_counter() - started)
        if answer.status >= 400:
            self.stats.error(f"{method} {path}: HTTP {answer.status}")
            return None
        return answer

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop`, the first tick at a random phase of the interval."""
        delay = random.uniform(0, self.tick)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
            await self.run_tick()
            delay = self.tick * random.uniform(1 - JITTER, 1 + JITTER)

    async def run_tick(self) -> None:
        """One tick on its own connection, as one `ansible-proxy run` would make it."""
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),
            timeout=aiohttp.ClientTimeout(total=30),
            headers=self.headers,
        ) as http:
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
                if self.installed.get(name) != sha:
                    await self._upgrade(http, name, sha)
        self.stats.ticks += 1

    async def _keepalive(self, http: aiohttp.ClientSession) -> bool:
        if self.registered:
            return await self._call(http, "GET", self.keepalive_path) is not None
        info = {"nodeName": self.name, "cpuArch": ARCH, "osRelease": "sim", "binProxyVersion": "1"}
        self.registered = await self._call(http, "POST", "/keepalive", json=info) is not None
        return self.registered

    async def _upgrade(self, http: aiohttp.ClientSession, name: str, sha: str) -> None:
        started = time.monotonic()
        progress = {"nodeName": self.name, "binName": name, "targetHash": sha,
                    "processingTime": 0, "status": "in_progress"}  # fmt: skip
        if await self._call(http, "POST", f"/bins/{name}/progress", json=progress) is None:
            return
        params = {"sha256": sha, "arch": ARCH}
        got = await self._call(http, "GET", f"/download/{name}", params=params)
        if got is None:
            return
        if hashlib.sha256(got.body).hexdigest() != sha:
            self.stats.error(f"download {name}: content does not hash to {sha[:12]}")
            return
        progress["status"] = "success"
        progress["processingTime"] = int(time.monotonic() - started)
        if await self._call(http, "POST", f"/bins/{name}/progress", json=progress) is None:
            return
        report = {"nodeName": self.name, "binName": name, "sha256": sha, "version": "latest"}
        if await self._call(http, "POST", f"/bins/{name}", json=report) is None:
            return
        self.installed[name] = sha
        if self.stats.watch == (name, sha):
            self.stats.reported.setdefault(self.name, time.monotonic())


async def register(api: str, names: list[str], parallel: int = 32) -> None:
    """POST /keepalive for each name (before a timed run: a fleet that already exists)."""
    queue = list(names)

    async def worker(http: aiohttp.ClientSession) -> None:
        while queue:
            info = {"nodeName": queue.pop(), "cpuArch": ARCH, "osRelease": "sim",
                    "binProxyVersion": "1"}  # fmt: skip
            async with http.post(f"{api}/keepalive", json=info) as response:
                response.raise_for_status()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(*(worker(http) for _ in range(parallel)))


def _loopback_addresses() -> Iterator[str]:
    """127.1.1.1, 127.1.2.1, …: source addresses of hosts in networks of their own (the
    server's budgets are per address or per /24 network)."""
    for high, middle in itertools.product(range(1, 255), range(1, 255)):
        yield f"127.{high}.{middle}.1"


_ADDRESSES = _loopback_addresses()  # one run never reuses an address (a fresh budget each)


async def enrol(
    api: str, enrolment_token: str, names: list[str], parallel: int = 16
) -> dict[str, str]:
    """POST /enrol for each name with a node token of its own, as an agent's first tick
    does (BIN_MANAGER_NODE_AUTH=required); returns name → token.

    Before a timed run: a fleet that exists. Each group of ENROL_PER_ADDRESS names comes
    from a loopback address in a /24 of its own, as hosts in many networks would, so the
    server's enrolment budget (left at its default) is never what is measured.
    """
    tokens = {name: secrets.token_urlsafe(32) for name in names}
    groups = [names[i : i + ENROL_PER_ADDRESS] for i in range(0, len(names), ENROL_PER_ADDRESS)]
    auth = {"Authorization": f"Bearer {enrolment_token}"}

    async def one_address(group: list[str], address: str) -> None:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0)),
            timeout=aiohttp.ClientTimeout(total=120),
            headers=auth,
        ) as http:
            for name in group:
                body = {"nodeName": name, "cpuArch": ARCH, "osRelease": "sim",
                        "binProxyVersion": "1", "nodeToken": tokens[name]}  # fmt: skip
                async with http.post(f"{api}/enrol", json=body) as response:
                    if response.status not in (200, 201):
                        text = await response.text()
                        raise RuntimeError(f"POST /enrol {name}: HTTP {response.status} {text}")

    semaphore = asyncio.Semaphore(parallel)

    async def limited(group: list[str], address: str) -> None:
        async with semaphore:
            await one_address(group, address)

    await asyncio.gather(*(limited(group, next(_ADDRESSES)) for group in groups))
    return tokens
