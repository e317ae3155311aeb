"""The sustained fleet's no-op ticks, cheap enough that the server is what gets measured.

A tick of a node that runs what it should is `GET /keepalive` then the batch `GET /bins`
with `If-None-Match`, on one new connection, each with the node's token, as
`ansible-proxy run` sends them. This client writes prebuilt request bytes on a bare
asyncio protocol and reads only the status line, `Content-Length`, `ETag` and the body:
a few Python objects per request instead of aiohttp's session, connector, request and
response objects. A step's agents run in one process per core (`run_shard`, started by
bench/fleet_sim.py), so the load generator is not bounded by one core.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from array import array
from dataclasses import dataclass, field

import uvloop

ARCH = "x86_64"
JITTER = 0.1
TIMEOUT = 30.0
GRACE_SECONDS = 10.0  # ticks still in flight this long after the window are cancelled
_HEAD_END = b"\r\n\r\n"


class HttpError(Exception):
    """A request that got no usable answer (refused, reset, malformed, timed out)."""


@dataclass(frozen=True)
class ShardJob:
    """One process's part of a step: its nodes (name, token) and the wall-clock plan."""

    host: str
    port: int
    nodes: list[tuple[str, str]]
    installed: dict[str, str]  # bin → sha every node runs
    tick: float
    begin: float  # time.time() at which the agents start (each at a random phase)
    measure_from: float
    measure_until: float


@dataclass
class ShardResult:
    """What one process saw inside the window [measure_from, measure_until]."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    ticks: int = 0
    cpu_seconds: float = 0.0  # this process's CPU inside the window

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


class _Connection(asyncio.Protocol):
    """One tick's connection: answers are read one at a time, in order."""

    __slots__ = ("buffer", "transport", "waiter")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = _parse(self.buffer)
        except HttpError as exc:
            waiter.set_exception(exc)
            return
        if answer is not None:
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpError(f"connection closed: {exc or 'EOF'}"))

    async def ask(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Send `request`; (status, etag, body) of its answer."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def _parse(buffer: bytearray) -> tuple[int, bytes, bytes] | None:
    """One whole answer off the front of `buffer` (None: not all of it yet)."""
    end = buffer.find(_HEAD_END)
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1.1 "):
        raise HttpError(f"not an HTTP/1.1 answer: {head[:40]!r}")
    status = int(head[9:12])
    length = 0
    etag = b""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"etag":
            etag = value.strip()
        elif name == b"transfer-encoding":
            raise HttpError("a chunked answer (this client reads Content-Length only)")
    start = end + 4
    if len(buffer) < start + length:
        return None
    body = bytes(buffer[start : start + length])
    del buffer[: start + length]
    return status, etag, body


class WireAgent:
    """One simulated node already running `installed`: no-op ticks until told to stop."""

    __slots__ = ("etag", "installed", "keepalive", "name", "poll")

    def __init__(self, host: str, port: int, name: str, token: str, installed: dict[str, str]):
        common = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        self.name = name
        # names are [a-z0-9-]: nothing to quote
        self.keepalive = f"GET /api/v1/keepalive?nodeName={name} HTTP/1.1\r\n{common}\r\n".encode()
        self.poll = f"GET /api/v1/bins?nodeName={name}&arch={ARCH} HTTP/1.1\r\n{common}".encode()
        self.etag = b""
        self.installed = installed

    async def tick(self, host: str, port: int, result: ShardResult, counting: bool) -> None:
        """Keepalive and batch poll on a new connection; latencies and errors counted."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        transport = None
        try:
            async with asyncio.timeout(TIMEOUT):
                transport, conn = await loop.create_connection(_Connection, host, port)
                status, _etag, body = await conn.ask(self.keepalive)
                done = time.perf_counter()
                if counting:
                    result.latencies.append(done - started)
                if status != 200:
                    raise HttpError(f"GET /keepalive: HTTP {status} {body[:120]!r}")
                poll = self.poll
                if self.etag:
                    poll += b"If-None-Match: " + self.etag + b"\r\n"
                status, etag, body = await conn.ask(poll + b"\r\n")
                if counting:
                    result.latencies.append(time.perf_counter() - done)
                if status == 200:
                    self._check(body)
                    self.etag = etag
                elif status != 304:
                    raise HttpError(f"GET /bins: HTTP {status} {body[:120]!r}")
        except (OSError, HttpError, TimeoutError, ValueError) as exc:
            if counting:
                result.error(f"{self.name}: {type(exc).__name__}: {exc}")
            return
        finally:
            if transport is not None:
                transport.close()
        if counting:
            result.ticks += 1

    def _check(self, body: bytes) -> None:
        wanted = json.loads(body)["data"]["bins"]
        if wanted != self.installed:
            raise HttpError(f"GET /bins: told {wanted}, running {self.installed}")


async def _run(job: ShardJob) -> ShardResult:
    result = ShardResult()
    agents = [WireAgent(job.host, job.port, *node, job.installed) for node in job.nodes]
    await asyncio.sleep(max(0.0, job.begin - time.time()))
    inflight: set[asyncio.Task[None]] = set()

    async def ticking(agent: WireAgent) -> None:
        delay = random.uniform(0, job.tick)
        while True:
            await asyncio.sleep(delay)
            now = time.time()
            if now >= job.measure_until:
                return
            task = asyncio.ensure_future(
                agent.tick(job.host, job.port, result, now >= job.measure_from)
            )
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            delay = job.tick * random.uniform(1 - JITTER, 1 + JITTER)

    loops = [asyncio.ensure_future(ticking(agent)) for agent in agents]
    await asyncio.sleep(max(0.0, job.measure_from - time.time()))
    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(max(0.0, job.measure_until - time.time()))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    await asyncio.gather(*loops)
    if inflight:  # ticks begun inside the window count when they end
        _done, pending = await asyncio.wait(inflight, timeout=GRACE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return result


def run_shard(job: ShardJob) -> ShardResult:
    """A process pool's entry point: run `job` on its own event loop."""
    return uvloop.run(_run(job))
