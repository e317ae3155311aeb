"""Fleet benchmark: simulated agents (bench/fleet_agents.py) against a real bin-manager.

Run: `.venv/bin/python -m bench.fleet_sim` (about 8 minutes). For the sustained load
time is compressed: N nodes ticking once a minute are simulated by N*tick/60 agents
ticking every `tick` seconds (the same request rate). Convergence is not compressed:
every node is an agent that reports. Prints `fleet_nodes_sustained_sqlite`,
`fleet_convergence_vs_tick` (1,000 nodes), `fleet_convergence_vs_tick_10000_nodes` and
`fleet_replicas_2_vs_1` (bench/fleet_scaleout.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import uvloop
from tests.support.procs import LOOPBACK
from tests.support.server import BinManager

from bench import fleet_scaleout, fleet_wire
from bench.fleet_agents import SimAgent, Stats, enrol

BINS = 10
ARTIFACT_BYTES = 64 * 1024
REAL_TICK = 60.0
SUSTAIN_TICK = 3.0  # compressed tick of the sustain steps
MEASURE_SECONDS = 9.0
STEPS = (2_500, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000, 100_000, 120_000)
P99_LIMIT_MS = 100.0
CONVERGENCE_NODES = 1_000
CONVERGENCE_TICK = 30.0  # twice the request rate of a one-minute tick: the harder case
LARGE_CONVERGENCE_NODES = 10_000
GRACE_SECONDS = 10.0  # agents still mid-tick after this at a stop are cancelled


@dataclass(frozen=True)
class StepResult:
    nodes: int
    agents: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tick_ratio: float  # ticks done / ticks due: below 1 when the simulator falls behind
    cpu_percent: float
    rss_mib: float
    sim_cpu_percent: float  # the simulator's processes together (% of one core)
    sim_busiest_percent: float  # its busiest process: near 100 means it is the limit
    server_p99_ms: float  # from the server's access log: its own time, without the client's

    @property
    def sustained(self) -> bool:
        return self.p99_ms < P99_LIMIT_MS and self.errors == 0 and self.tick_ratio >= 0.85

    def line(self) -> str:
        return (
            f"  {self.nodes:>6} nodes ({self.agents} agents): {self.rps:7.1f} req/s "
            f"p50 {self.p50_ms:6.1f} ms p99 {self.p99_ms:6.1f} ms errors {self.errors} "
            f"(server-side p99 {self.server_p99_ms:5.1f} ms) ticks {self.tick_ratio:4.2f} "
            f"server cpu {self.cpu_percent:5.1f}% "
            f"rss {self.rss_mib:5.1f} MiB (simulator cpu {self.sim_cpu_percent:5.1f}%, "
            f"busiest process {self.sim_busiest_percent:5.1f}%) "
            f"{'ok' if self.sustained else 'NOT sustained'}"
        )


def publish_fleet(bm: BinManager, tag: str = "1") -> dict[str, str]:
    """BINS bins of ARTIFACT_BYTES each; returns bin → sha256."""
    return {
        f"bin-{i:02d}": bm.publish(f"bin-{i:02d}", _artifact(f"bin-{i:02d}", tag))
        for i in range(BINS)
    }


def _artifact(name: str, tag: str) -> bytes:
    head = f"{name} version {tag}\n".encode()
    return head + b"\0" * (ARTIFACT_BYTES - len(head))


async def _sample_rss(proc: psutil.Process, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def server_p99(log: Path, offset: int, since: float, until: float) -> float:
    """p99 of `duration_ms` in the access log lines (from byte `offset` on) stamped
    within [since, until] (time.time())."""
    durations = []
    with log.open(errors="replace") as lines:
        lines.seek(offset)
        for line in lines:
            start = line.find('{"ts"')
            if start < 0:
                continue
            entry = json.loads(line[start:])
            if since <= entry["ts"] <= until:
                durations.append(float(entry["duration_ms"]))
    durations.sort()
    return durations[int(0.99 * len(durations))] if durations else 0.0


class Fleet:
    """The enrolled nodes of one server (name → node token) and the processes that
    simulate a step's agents."""

    def __init__(self, bm: BinManager, pool: ProcessPoolExecutor, shards: int) -> None:
        self.bm = bm
        self.pool = pool
        self.shards = shards
        self.tokens: dict[str, str] = {}

    async def enrolled(self, names: list[str]) -> list[tuple[str, str]]:
        """(name, token) of each, enrolling through POST /enrol those not enrolled yet."""
        new = [name for name in names if name not in self.tokens]
        if new:
            assert self.bm.enrolment_token is not None
            started = time.monotonic()
            self.tokens.update(await enrol(self.bm.api, self.bm.enrolment_token, new))
            print(f"  enrolled {len(new)} nodes in {time.monotonic() - started:.1f} s "
                  "(POST /enrol, untimed)", flush=True)  # fmt: skip
        return [(name, self.tokens[name]) for name in names]


async def sustain_step(fleet: Fleet, nodes: int, installed: dict[str, str]) -> StepResult:
    """Run `nodes` (as agents at the compressed tick): two warm-up ticks, then measure.

    The nodes are enrolled first, untimed: the step measures a fleet that exists, whose
    ticks are GET /keepalive + GET /bins with each node's token, not a storm of
    enrolments. The agents are split over `fleet.shards` processes (bench/fleet_wire.py).
    """
    bm = fleet.bm
    count = max(1, round(nodes * SUSTAIN_TICK / REAL_TICK))
    members = await fleet.enrolled([f"node-{i:05d}" for i in range(count)])
    proc = psutil.Process(bm.service.pid)
    begin = time.time() + 1.0  # the shards start together
    # Two ticks: a node's first tick after its enrolment finds nothing about it cached.
    measure_from = begin + SUSTAIN_TICK * 2
    measure_until = measure_from + MEASURE_SECONDS
    loop = asyncio.get_running_loop()
    jobs = [
        fleet_wire.ShardJob(
            host=LOOPBACK,
            port=bm.port,
            nodes=members[shard :: fleet.shards],
            installed=installed,
            tick=SUSTAIN_TICK,
            begin=begin,
            measure_from=measure_from,
            measure_until=measure_until,
        )
        for shard in range(fleet.shards)
    ]
    running = [loop.run_in_executor(fleet.pool, fleet_wire.run_shard, job) for job in jobs]
    await asyncio.sleep(max(0.0, measure_from - time.time()))
    cpu_before, log_offset = proc.cpu_times(), bm.service.log_path.stat().st_size
    stop, peak = asyncio.Event(), [0.0]
    sampler = asyncio.create_task(_sample_rss(proc, peak, stop))
    await asyncio.sleep(max(0.0, measure_until - time.time()))
    cpu_after = proc.cpu_times()
    stop.set()
    await sampler
    shards = await asyncio.gather(*running)
    elapsed = measure_until - measure_from
    latencies = sorted(x for shard in shards for x in shard.latencies)
    result = StepResult(
        nodes=nodes,
        agents=count,
        rps=len(latencies) / elapsed,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        errors=sum(shard.errors for shard in shards),
        tick_ratio=sum(shard.ticks for shard in shards) / (count * elapsed / SUSTAIN_TICK),
        cpu_percent=100 * _cpu_seconds(cpu_before, cpu_after) / elapsed,
        rss_mib=peak[0],
        sim_cpu_percent=100 * sum(shard.cpu_seconds for shard in shards) / elapsed,
        sim_busiest_percent=100 * max(shard.cpu_seconds for shard in shards) / elapsed,
        server_p99_ms=server_p99(bm.service.log_path, log_offset, measure_from, measure_until),
    )
    for sample in [sample for shard in shards for sample in shard.error_samples][:5]:
        print(f"    error: {sample}", flush=True)
    return result


async def finish(tasks: list[asyncio.Task[None]]) -> None:
    """Let ticks in flight end (bounded), then cancel what is left."""
    _done, pending = await asyncio.wait(tasks, timeout=GRACE_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _percentile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted seconds, in milliseconds."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _cpu_seconds(before: object, after: object) -> float:
    return float(
        getattr(after, "user", 0.0)
        + getattr(after, "system", 0.0)
        - getattr(before, "user", 0.0)
        - getattr(before, "system", 0.0)
    )


async def convergence(fleet: Fleet, nodes: int, tick: float, installed: dict[str, str]) -> float:
    """Seconds from a publish until every node reported the new sha, divided by `tick`.

    Every node is a simulated agent of its own (no time compression: each reports, with
    its node token), the fleet enrolled beforehand, untimed.
    """
    bm = fleet.bm
    stats, stop = Stats(), asyncio.Event()
    members = await fleet.enrolled([f"conv{nodes}-{i:05d}" for i in range(nodes)])
    agents = [
        SimAgent(bm.api, name, installed, stats, tick, _bearer(token), registered=True)
        for name, token in members
    ]
    tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
    await asyncio.sleep(tick * 1.2)  # every node has ticked once
    content = _artifact("bin-00", f"{time.time()}")
    published = time.monotonic()
    sha = await asyncio.to_thread(bm.publish, "bin-00", content)
    stats.watch = ("bin-00", sha)
    installed["bin-00"] = sha  # what the next convergence run starts from
    deadline = published + 4 * tick
    while len(stats.reported) < nodes and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    stop.set()
    await finish(tasks)
    print(
        f"  convergence: {len(stats.reported)}/{nodes} nodes reported the new sha, "
        f"{stats.errors} errors, p99 {stats.percentile(0.99):.1f} ms",
        flush=True,
    )
    for sample in stats.error_samples:
        print(f"    error: {sample}", flush=True)
    if len(stats.reported) < nodes:
        return float("inf")
    return (max(stats.reported.values()) - published) / tick


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def limit_of(result: StepResult) -> str:
    """What stopped a step: a simulator process near a whole core cannot keep time, and
    a machine whose cores are all busy slows both sides; else the server."""
    if result.sim_busiest_percent >= 90:
        return "the simulator (a process of it near a whole core)"
    if result.cpu_percent + result.sim_cpu_percent >= 90 * (os.cpu_count() or 1):
        return "the machine (server and simulator together use every core)"
    return "the server"


async def sqlite_benchmarks(workdir: Path, quick: bool, shards: int) -> None:
    # As docs/security.md tells operators to run it: every node enrolled, every write
    # about a node with its own token (the launcher's default enrolment token).
    bm = BinManager(workdir / "sqlite", node_auth="required").start()
    context = multiprocessing.get_context("spawn")  # no fork of a running event loop
    with ProcessPoolExecutor(shards, mp_context=context) as pool:
        try:
            await _sqlite_benchmarks(Fleet(bm, pool, shards), quick)
        finally:
            bm.stop()


async def _sqlite_benchmarks(fleet: Fleet, quick: bool) -> None:
    bm = fleet.bm
    installed = await asyncio.to_thread(publish_fleet, bm)
    load = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    print(f"fleet: one bin-manager (SQLite, BIN_MANAGER_NODE_AUTH=required), {BINS} bins, "
          f"tick {REAL_TICK:.0f} s; simulator processes {fleet.shards}; "
          f"machine load average {load}", flush=True)  # fmt: skip
    sustained, cpu_per_1000 = 0, 0.0
    for nodes in STEPS[:3] if quick else STEPS:
        result = await sustain_step(fleet, nodes, installed)
        print(result.line(), flush=True)
        if not result.sustained:  # the machine is shared: one more try before giving up
            result = await sustain_step(fleet, nodes, installed)
            print(result.line(), flush=True)
        if not result.sustained:
            # Then the figure is a lower bound of the server's limit unless the
            # server was the limit.
            print(f"fleet: the search stopped at {nodes} nodes, limited by "
                  f"{limit_of(result)}", flush=True)  # fmt: skip
            break
        sustained, cpu_per_1000 = nodes, result.cpu_percent / (nodes / 1000)
    else:
        print(f"fleet: every step sustained, up to the largest ({sustained} nodes)",
              flush=True)  # fmt: skip
    print(f"fleet_nodes_sustained_sqlite: {sustained}", flush=True)
    # Server CPU (% of one core) per 1,000 nodes at the largest sustained step.
    print(f"fleet_server_cpu_percent_per_1000_nodes: {cpu_per_1000:.1f}", flush=True)
    nodes, tick = (200, 5.0) if quick else (CONVERGENCE_NODES, CONVERGENCE_TICK)
    ratio = await convergence(fleet, nodes, tick, installed)
    print(f"fleet_convergence_vs_tick: {ratio:.2f}", flush=True)
    if not quick:  # the target's fleet: 10,000 nodes ticking every minute, each reporting
        large = await convergence(fleet, LARGE_CONVERGENCE_NODES, REAL_TICK, installed)
        print(f"fleet_convergence_vs_tick_10000_nodes: {large:.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_sim", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps (smoke)")
    parser.add_argument("--no-scale-out", action="store_true", help="skip PostgreSQL + nginx")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="simulator processes for the sustained steps (default: one per core)",
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ansible-proxy-fleet-"))
    workdir.chmod(0o755)
    started = time.monotonic()
    try:
        uvloop.run(sqlite_benchmarks(workdir, args.quick, max(1, args.processes)))
        if not args.no_scale_out:
            one, two = fleet_scaleout.replicas_throughput(workdir / "scale-out", args.quick)
            print(f"fleet_replicas_2_vs_1: {two / one:.2f}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"fleet: done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
