"""Simulated agents for the fleet benchmark: asyncio tasks speaking the agent's protocol.

Each tick: keepalive (POST the first time, GET after), one batch poll with If-None-Match,
and for every bin whose sha changed: progress, download (hash checked), progress, report.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from dataclasses import dataclass, field

import httpx

ARCH = "x86_64"
JITTER = 0.1


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


class SimAgent:
    """One simulated node, already running `installed` (bin → sha) when it starts."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        api: str,
        name: str,
        installed: dict[str, str],
        stats: Stats,
        tick: float,
    ) -> None:
        self.client = client
        self.api = api
        self.name = name
        self.installed = dict(installed)
        self.stats = stats
        self.tick = tick
        self.registered = False
        self.etag: str | None = None
        self.wanted: dict[str, str] = {}
        self.keepalive_path = f"/keepalive?nodeName={name}"  # names are [a-z0-9-]: no quoting
        self.poll_path = f"/bins?nodeName={name}&arch={ARCH}"

    async def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.client.request(method, f"{self.api}{path}", **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self.stats.error(f"{method} {path}: {type(exc).__name__}")
            return None
        self.stats.latencies.append(time.perf_counter() - started)
        if response.status_code >= 400:
            self.stats.error(f"{method} {path}: HTTP {response.status_code}")
            return None
        return response

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
        if not await self._keepalive():
            return
        headers = {"If-None-Match": self.etag} if self.etag else {}
        polled = await self._call("GET", self.poll_path, headers=headers)
        if polled is None:
            return
        if polled.status_code == 200:
            self.wanted = dict(polled.json()["data"]["bins"])
            self.etag = polled.headers.get("ETag")
        for name, sha in sorted(self.wanted.items()):
            if self.installed.get(name) != sha:
                await self._upgrade(name, sha)
        self.stats.ticks += 1

    async def _keepalive(self) -> bool:
        if self.registered:
            return await self._call("GET", self.keepalive_path) is not None
        info = {"nodeName": self.name, "cpuArch": ARCH, "osRelease": "sim", "binProxyVersion": "1"}
        self.registered = await self._call("POST", "/keepalive", json=info) is not None
        return self.registered

    async def _upgrade(self, name: str, sha: str) -> None:
        started = time.monotonic()
        progress = {"nodeName": self.name, "binName": name, "targetHash": sha,
                    "processingTime": 0, "status": "in_progress"}  # fmt: skip
        if await self._call("POST", f"/bins/{name}/progress", json=progress) is None:
            return
        got = await self._call("GET", f"/download/{name}", params={"sha256": sha, "arch": ARCH})
        if got is None:
            return
        if hashlib.sha256(got.content).hexdigest() != sha:
            self.stats.error(f"download {name}: content does not hash to {sha[:12]}")
            return
        progress["status"] = "success"
        progress["processingTime"] = int(time.monotonic() - started)
        if await self._call("POST", f"/bins/{name}/progress", json=progress) is None:
            return
        report = {"nodeName": self.name, "binName": name, "sha256": sha, "version": "latest"}
        if await self._call("POST", f"/bins/{name}", json=report) is None:
            return
        self.installed[name] = sha
        if self.stats.watch == (name, sha):
            self.stats.reported.setdefault(self.name, time.monotonic())
