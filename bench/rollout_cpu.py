"""Server CPU per poll with a staged rollout half-way, against the same fleet without a policy.

Three `bin-manager serve`, each on 10,000 nodes (inserted in bulk, all running the bin)
and two releases of it: without a policy (the immediate default); with a policy (canary
1, waves 10%,50%,100%, a one-day bake so that nothing moves by itself) whose rollout is
promoted to the 50 % wave, so half the nodes are told the new sha and half the previous;
and the same rollout with the background check every 300 s instead of 2 s (what the
per-node answers cost alone). wrk as bench/server_bench.py measures
server_cpu_ms_per_poll (2 threads, 64 connections, the server's CPU over the answers),
its Lua script cycling the node name through the fleet, on GET /bins/{bin} and on the
batch GET /bins, the sides interleaved (A B C, C B A, A B C; the median of the three
runs), and each server's CPU idle.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from math import nan as NAN
from pathlib import Path

from tests.support.server import BinManager

from bench.harness import Workspace, note, report
from bench.rollout_sim import (
    content,
    fleet_names,
    promote,
    rollout,
    set_policy,
    sha_of,
    start_fleet,
)
from bench.server_bench import cpu_seconds
from bench.wrk import WRK, parse_wrk

NODES = 10_000
BIN = "bench-poll"
ARCH = "x86_64"
WRK_SECONDS = 5
WARMUP_SECONDS = 2
IDLE_SECONDS = 6.0  # three of the rollout checker's rounds at its default 2 s
ROUNDS = 3
POLICY = {"canary": "1", "waves": "10%,50%,100%", "bakeSeconds": 86_400, "maxFailures": "1"}
# No member may fall silent (wrk sends no keepalive): silence would fail the wave.
ENV = {"BIN_MANAGER_ROLLOUT_SILENT_SECONDS": "86400"}
# The sides: no policy; the rollout with the product's checks (every 2 s); the same
# rollout checked every 300 s (the most the setting takes): its answers alone.
SIDES: dict[str, dict[str, str]] = {
    "immediate": {},
    "staged": {},
    "staged_unchecked": {"BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS": "300"},
}
PATHS = {
    "poll": f"/api/v1/bins/{BIN}?nodeName=node-%06d&arch={ARCH}",
    "batch_poll": f"/api/v1/bins?nodeName=node-%06d&arch={ARCH}",
}
_SCRIPT = """local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", string.format("{path}", n % {nodes}))
end
"""


def script(directory: Path, label: str, path: str, nodes: int) -> Path:
    """A wrk Lua script asking `path` (a %06d for the node) for each node in turn."""
    target = directory / f"{label}.lua"
    target.write_text(_SCRIPT.replace("{path}", path).replace("{nodes}", str(nodes)))
    return target


def cpu_ms_per_answer(bm: BinManager, lua: Path, seconds: int) -> float:
    """One wrk run: the server's CPU milliseconds per answered request (2xx only)."""
    argv = [WRK, "-t2", "-c64", f"-d{seconds}s", "--latency", "-s", str(lua), bm.url]
    before = cpu_seconds(bm.pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    used = cpu_seconds(bm.pid) - before
    result = parse_wrk(done.stdout)
    if result.non_2xx or result.socket_errors:
        note(f"wrk: {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors")
    answered = result.requests - result.non_2xx
    return used * 1000 / answered if answered else NAN


def idle_cpu_percent(bm: BinManager, seconds: float) -> float:
    """The server's CPU (% of one core) with no request at all: its background work."""
    before = cpu_seconds(bm.pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(bm.pid) - before) / seconds


def told_new(bm: BinManager, names: list[str], new_sha: str) -> int:
    """How many of `names` GET /bins/{bin} tells the new sha."""
    told = 0
    with bm.client() as http:
        for name in names:
            answer = http.get(f"{bm.api}/bins/{BIN}", params={"nodeName": name, "arch": ARCH})
            told += answer.json()["data"]["sha256"] == new_sha
    return told


def _half_way(staged: BinManager) -> str:
    state = rollout(staged, BIN)
    return f"{state.get('state')} at wave {state.get('wave')} of {state.get('waveCount')}"


def _servers(ws: Workspace, nodes: int) -> dict[str, BinManager]:
    """The three sides, each with v1 and v2 published; the staged ones at the 50 % wave."""
    v1, v2 = content(BIN, "1"), content(BIN, "2")
    sides = {
        side: start_fleet(ws, side, nodes, {BIN: sha_of(v1)}, {**ENV, **extra})
        for side, extra in SIDES.items()
    }
    for side, bm in sides.items():
        if side != "immediate":
            set_policy(bm, BIN, POLICY)
        bm.publish(BIN, v1)
        bm.publish(BIN, v2)
        if side != "immediate":
            promote(bm, BIN)
            promote(bm, BIN)
    sample = fleet_names(nodes)[:: max(1, nodes // 400)]
    told = {side: told_new(bm, sample, sha_of(v2)) for side, bm in sides.items()}
    note(
        f"staged: {_half_way(sides['staged'])}; of {len(sample)} sampled nodes, told the new "
        f"sha: {told}; rollouts without a policy: {rollout(sides['immediate'], BIN) or 'none'}"
    )
    return sides


def run(quick: bool = False) -> list[str]:
    """The three servers, wrk on each endpoint; returns the printed lines."""
    nodes = 1_000 if quick else NODES
    seconds = 3 if quick else WRK_SECONDS
    lines = []
    with Workspace("rollout-cpu") as ws:
        note(f"three servers on {nodes} nodes each: no policy, a rollout half-way (twice)")
        sides = _servers(ws, nodes)
        idle = {side: idle_cpu_percent(bm, IDLE_SECONDS) for side, bm in sides.items()}
        figures: dict[str, dict[str, float]] = {}
        for label, path in PATHS.items():
            lua = script(ws.root, label, path, nodes)
            for bm in sides.values():
                cpu_ms_per_answer(bm, lua, WARMUP_SECONDS)
            got: dict[str, list[float]] = {side: [] for side in sides}
            for round_ in range(ROUNDS):  # interleaved: A B C, C B A, A B C
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for side in order:
                    got[side].append(cpu_ms_per_answer(sides[side], lua, seconds))
            note(f"{label}: cpu ms per answer " + ", ".join(
                f"{side} {' '.join(f'{ms:.3f}' for ms in runs)}" for side, runs in got.items()
            ))  # fmt: skip
            figures[label] = {side: statistics.median(runs) for side, runs in got.items()}
        note(f"staged after the runs: {_half_way(sides['staged'])}")
        for label, ms in figures.items():
            base = ms["immediate"]
            lines.append(
                report(f"server_cpu_per_{label}_staged_vs_immediate", ms["staged"] / base, 2)
            )
            lines.append(
                report(
                    f"server_cpu_per_{label}_staged_unchecked_vs_immediate",
                    ms["staged_unchecked"] / base,
                    2,
                )
            )
            for side, value in ms.items():
                lines.append(report(f"server_cpu_ms_per_{label}_{side}", value, 3))
        for side, percent in idle.items():
            lines.append(report(f"server_idle_cpu_percent_{side}", percent, 1))
    return lines


if __name__ == "__main__":
    run()
