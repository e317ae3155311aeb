"""Staged rollouts (issue 15) on the simulated fleet, each against its baseline of the same run.

Run: `.venv/bin/python -m bench.fleet_rollout [cpu|convergence|exposure …]` (about 8
minutes; `--quick` for a smoke run).
- exposure: 10,000 nodes, a bad release published under `--canary 1 --waves 10%,50%,100%
  --bake 5 --max-failures 1`, then under the immediate default: how many nodes were told it.
- convergence: a good release through the same policy (bake 5 s, a 3 s tick), time until
  every node runs it against the plan, waves × (bake + tick), the canary counted as a wave.
- server CPU per poll with a rollout half-way (bench/rollout_cpu.py) against no policy.
Prints `name: value` lines (progress remarks on stderr); see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

import psutil
import uvloop
from tests.support.server import BinManager

from bench import rollout_cpu
from bench.fleet_agents import Stats, register
from bench.fleet_sim import finish
from bench.harness import Workspace, note, terminate_on_sigterm
from bench.rollout_sim import (
    LeanAgent,
    Ledger,
    content,
    fleet_names,
    rollout,
    route_latencies,
    set_policy,
    sha_of,
    shared_session,
    start_fleet,
    wait_for,
)
from bench.server_bench import cpu_seconds

BAKE = 5
INTERVAL = 0.5  # BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS: compressed like the tick
POLICY = {"canary": "1", "waves": "10%,50%,100%", "bakeSeconds": BAKE, "maxFailures": "1"}
ENV = {"BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS": str(INTERVAL)}
# Exposure: every node its own agent, twice the real rate (a 30 s tick). Not faster: with
# node credentials (even in "migrate") a node's keepalive misses the fast path when it
# ticks slower than the 5 s its name's state is cached, and costs ~2 ms of server CPU.
EXPOSURE_NODES = 10_000
EXPOSURE_TICK = 30.0
# Convergence: compressed as fleet_sim's sustained steps, 10,000 nodes at a 60 s tick
# = 500 agents at a 3 s tick (the same request and write rates).
CONVERGENCE_NODES = 500
CONVERGENCE_TICK = 3.0


def _own_cpu() -> float:
    """This process's CPU seconds (the simulator), without its children (the servers)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


@dataclass
class Fleet:
    """Agents of `nodes` node names ticking on one shared client until `stop`."""

    bm: BinManager
    nodes: int
    tick: float
    installed: dict[str, str]
    ledger: Ledger
    stats: Stats

    async def __aenter__(self) -> Fleet:
        # Registered first, untimed, as bench/fleet_sim.py does: a fleet the server knows
        # (a node it does not know in memory costs its first keepalive one UPDATE).
        started = time.monotonic()
        await register(self.bm.api, fleet_names(self.nodes), parallel=100)
        note(f"{self.nodes} nodes registered in {time.monotonic() - started:.1f}s")
        self.stop = asyncio.Event()
        self.http = shared_session()
        agents = [
            LeanAgent(
                self.bm.api, name, self.installed, self.stats, self.tick, self.http, self.ledger
            )
            for name in fleet_names(self.nodes)
        ]
        self.mark()
        self.tasks = [asyncio.create_task(agent.run(self.stop)) for agent in agents]
        # Warm-up: every node ticks once (the server learns them: first keepalives).
        started = time.monotonic()
        await wait_for(lambda: self.stats.ticks >= self.nodes, started + 4 * self.tick)
        note(
            f"{self.stats.ticks} ticks of {self.nodes} nodes in {time.monotonic() - started:.1f}s"
            f" (warm-up), {self.stats.errors} errors; {self.usage()}"
        )
        self.stats.reset()
        return self

    def mark(self) -> None:
        """Start the next `usage()` interval."""
        self._since = (time.monotonic(), time.time())
        self._cpu = (_own_cpu(), cpu_seconds(self.bm.pid))

    def usage(self) -> str:
        """Since the last mark: server and simulator CPU, the server's own latencies."""
        elapsed = time.monotonic() - self._since[0]
        sim = 100 * (_own_cpu() - self._cpu[0]) / elapsed
        server = 100 * (cpu_seconds(self.bm.pid) - self._cpu[1]) / elapsed
        routes = route_latencies(self.bm.service.log_path, self._since[1])
        self.mark()
        return f"server cpu {server:.0f}%, simulator cpu {sim:.0f}%; server-side: {routes}"

    async def told(self, bin_name: str, node: str) -> str:
        """What GET /bins/{bin} tells `node` now."""
        params = {"nodeName": node, "arch": "x86_64"}
        async with self.http.get(f"{self.bm.api}/bins/{bin_name}", params=params) as answer:
            answer.raise_for_status()
            body = await answer.json()
        return str(body["data"]["sha256"])

    async def __aexit__(self, *_exc: object) -> None:
        self.stop.set()
        await finish(self.tasks)
        await self.http.close()
        for sample in self.stats.error_samples:
            note(f"error: {sample}")


async def _until_state(
    bm: BinManager, bin_name: str, states: set[str], deadline: float, every: float
) -> dict[str, Any]:
    """The bin's newest rollout once in one of `states`, or as it is at the deadline.

    Asked every `every` seconds, no more: the status reads every member (about 0.35 s of
    the server's CPU per ask at 10,000 members, measured on the build machine).
    """
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(rollout, bm, bin_name)
        if found.get("state") in states:
            return found
        await asyncio.sleep(every)
    return await asyncio.to_thread(rollout, bm, bin_name)


async def _publish_bad(bm: BinManager, fleet: Fleet, name: str, staged: bool, tick: float) -> int:
    """Publish a bad release of `name`; how many nodes were told it, once it settled.

    Staged: until the rollout halts, then 1.2 ticks more (every node polls again after the
    revert). Immediate: until every node was told it (at most 5 ticks: a server saturated
    by the fleet's keepalives answers late).
    """
    bad = content(name, "bad")
    sha = sha_of(bad)
    fleet.ledger.bad.add(sha)
    published = time.monotonic()
    await asyncio.to_thread(bm.publish, name, bad)
    if staged:
        # The revert as the nodes see it: the first node told the release is told another.
        deadline = published + 4 * tick
        await wait_for(lambda: fleet.ledger.told_count(name, sha) > 0, deadline)
        first = next(iter(fleet.ledger.told.get((name, sha), {"": 0.0})))
        while first and time.monotonic() < deadline and await fleet.told(name, first) == sha:
            await asyncio.sleep(0.25)
        state = await asyncio.to_thread(rollout, bm, name)
        told_at = fleet.ledger.told.get((name, sha), {}).get(first, published) - published
        note(
            f"{name}: {state.get('state')} after {time.monotonic() - published:.1f}s (its first "
            f"node told it at {told_at:.1f}s) at wave {state.get('wave')} of "
            f"{state.get('waveCount')}, reverted {state.get('reverted')}: {state.get('reason')}"
        )
        await asyncio.sleep(1.2 * tick)  # every node polls again after the revert
        after = await asyncio.to_thread(rollout, bm, name)
        note(f"{name} {1.2 * tick:.0f}s later: {after.get('state')}, wave {after.get('wave')}")
        note(f"{name}: {fleet.usage()}")
    else:
        await wait_for(lambda: fleet.ledger.told_count(name, sha) >= fleet.nodes,
                       published + 5 * tick)  # fmt: skip
        note(
            f"{name}: {fleet.ledger.told_count(name, sha)} nodes told it after "
            f"{time.monotonic() - published:.1f}s; {fleet.usage()}"
        )
    return fleet.ledger.told_count(name, sha)


async def exposure(ws: Workspace, nodes: int, tick: float) -> list[str]:
    """A bad release, staged then immediate (one bin each, the same fleet): nodes told it."""
    bins = {name: sha_of(content(name, "1")) for name in ("bad-staged", "bad-immediate")}
    bm = await asyncio.to_thread(start_fleet, ws, "exposure", nodes, bins, ENV)
    for name in bins:
        await asyncio.to_thread(bm.publish, name, content(name, "1"))
    await asyncio.to_thread(set_policy, bm, "bad-staged", POLICY)
    stats = Stats()
    async with Fleet(bm, nodes, tick, bins, Ledger(), stats) as fleet:
        staged = await _publish_bad(bm, fleet, "bad-staged", True, tick)
        immediate = await _publish_bad(bm, fleet, "bad-immediate", False, tick)
    note(f"exposure: {stats.errors} errors, client p99 {stats.percentile(0.99):.1f} ms")
    lines = [
        f"fleet_bad_release_exposed_share: {staged / nodes:.4f} "
        f"(immediate: {immediate / nodes:.4f})",
        f"fleet_bad_release_exposed_nodes: {staged} (immediate: {immediate})",
        f"fleet_bad_release_fleet_nodes: {nodes}",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


def _wave_spans(times: list[float], sizes: list[int]) -> str:
    """'1 at 1.2s, 49 at 9.8–11.0s, …': when each wave's nodes were told, from the times."""
    ordered = sorted(times)
    spans, start = [], 0
    for size in sizes:
        group = ordered[start : start + size]
        start += size
        if group:
            spans.append(f"{size} at {group[0]:.1f}–{group[-1]:.1f}s")
    return ", ".join(spans)


async def convergence(ws: Workspace, nodes: int, tick: float) -> list[str]:
    """A good release through the policy: every node runs it after how many planned waves."""
    name = "good"
    bins = {name: sha_of(content(name, "1"))}
    bm = await asyncio.to_thread(start_fleet, ws, "convergence", nodes, bins, ENV)
    await asyncio.to_thread(bm.publish, name, content(name, "1"))
    await asyncio.to_thread(set_policy, bm, name, POLICY)
    ledger, stats = Ledger(), Stats()
    async with Fleet(bm, nodes, tick, bins, ledger, stats):
        new = content(name, "2")
        sha = sha_of(new)
        published = time.monotonic()
        await asyncio.to_thread(bm.publish, name, new)
        started = await asyncio.to_thread(rollout, bm, name)
        waves = int(started["waveCount"])
        plan = waves * (BAKE + tick)
        deadline = published + 3 * plan
        await wait_for(lambda: ledger.ran_count(name, sha) >= nodes, deadline)
        ran = ledger.ran.get((name, sha), {})
        last = max(ran.values()) - published if len(ran) >= nodes else float("inf")
        done = await _until_state(bm, name, {"completed", "halted"}, deadline, 0.5)
        completed = time.monotonic() - published
    sizes = [int(wave["size"]) for wave in started["waves"]]
    told = [at - published for at in ledger.told.get((name, sha), {}).values()]
    note(
        f"convergence: {len(ran)}/{nodes} nodes run it after {last:.1f}s; waves "
        f"{'+'.join(map(str, sizes))} told {_wave_spans(told, sizes)}; the rollout "
        f"{done.get('state')} after {completed:.1f}s; {stats.errors} errors, "
        f"client p99 {stats.percentile(0.99):.1f} ms"
    )
    lines = [
        f"fleet_staged_convergence_vs_plan: {last / plan:.2f}",
        f"fleet_staged_convergence_s: {last:.1f}",
        f"fleet_staged_plan_s: {plan:.1f}",
        f"fleet_staged_completed_vs_plan: "
        f"{completed / plan if done.get('state') == 'completed' else float('inf'):.2f}",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


PARTS = ("cpu", "convergence", "exposure")


async def fleet_figures(ws: Workspace, parts: list[str], quick: bool) -> None:
    if "convergence" in parts:
        await convergence(ws, 100 if quick else CONVERGENCE_NODES, CONVERGENCE_TICK)
    if "exposure" in parts:
        await exposure(ws, 1_000 if quick else EXPOSURE_NODES, 5.0 if quick else EXPOSURE_TICK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_rollout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small fleets, short runs (smoke)")
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"only: {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    parts: list[str] = args.parts or list(PARTS)
    if unknown := sorted(set(parts) - set(PARTS)):
        parser.error(f"unknown part {', '.join(unknown)}; parts are {', '.join(PARTS)}")
    terminate_on_sigterm()
    started = time.monotonic()
    load = ", ".join(f"{x:.2f}" for x in psutil.getloadavg())
    note(f"staged rollouts: {' '.join(parts)}; machine load average {load}")
    if "cpu" in parts:  # first: wrk wants the quietest machine
        rollout_cpu.run(quick=args.quick)
    with Workspace("rollout") as ws:
        uvloop.run(fleet_figures(ws, parts, args.quick))
    note(f"staged rollouts: done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
