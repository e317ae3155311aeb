"""Issue 14: the fleet dashboard and the admin node listing at 100,000 nodes against 1,000.

Nodes go into the server's SQLite in bulk (tests/support/many_nodes.py, the server's own
models and migrations) before `bin-manager serve` starts; every page is then timed over
loopback HTTP as a browser or a script would ask for it.
"""

from __future__ import annotations

import hashlib
import statistics
import time

import httpx
from tests.support.many_nodes import database_url, insert_nodes, node_name
from tests.support.server import BinManager

from bench.harness import Workspace, note, report

SIZES = (1_000, 100_000)
RUNS = 15
WARMUP = 3
BIN = "svc"
V1, V2 = b"svc release 1\n", b"svc release 2\n"


def _median_ms(http: httpx.Client, url: str) -> tuple[float, int]:
    """Median wall milliseconds of GET `url` (after warm-ups), and the page's size."""
    size = 0
    times = []
    for run in range(WARMUP + RUNS):
        start = time.perf_counter()
        answer = http.get(url)
        elapsed = time.perf_counter() - start
        answer.raise_for_status()
        size = len(answer.content)
        if run >= WARMUP:
            times.append(elapsed * 1000)
    return statistics.median(times), size


def measure(size: int) -> dict[str, tuple[float, int]]:
    """Median ms and bytes of each page, with `size` nodes (half run V1, half V2)."""
    shas = [hashlib.sha256(V1).hexdigest(), hashlib.sha256(V2).hexdigest()]
    with Workspace(f"dashboard-{size}") as ws:
        workdir = ws.path("bin-manager")
        start = time.perf_counter()
        insert_nodes(database_url(workdir / "data"), size, runs={BIN: shas}, stale_every=50)
        note(f"{size} nodes inserted in {time.perf_counter() - start:.1f}s")
        manager = ws.track(
            BinManager(workdir, extra_env={"BIN_MANAGER_DASHBOARD_PUBLIC": "true"})
        ).start()
        manager.publish(BIN, V1)
        manager.publish(BIN, V2)
        middle = node_name(size // 2)
        pages = {
            "fleet": "/dashboard/",
            "fleet_middle": f"/dashboard/?after={middle}",
            "fleet_prefix": f"/dashboard/?prefix={middle[:-2]}",
            "bin": f"/dashboard/bins/{BIN}",
            "admin_nodes": f"/api/v1/admin/nodes?after={middle}",
        }
        with manager.client(headers=manager.admin_headers) as http:
            return {name: _median_ms(http, manager.url + path) for name, path in pages.items()}


def run() -> list[str]:
    figures = {}
    for size in SIZES:
        note(f"dashboard pages with {size} nodes")
        figures[size] = measure(size)
    small, big = figures[SIZES[0]], figures[SIZES[1]]
    lines = [
        report("dashboard_fleet_100k_vs_1k", big["fleet"][0] / small["fleet"][0], 2),
        report(
            "dashboard_nodes_page_100k_vs_1k", big["admin_nodes"][0] / small["admin_nodes"][0], 2
        ),
    ]
    for size, label in ((SIZES[0], "1k"), (SIZES[1], "100k")):
        for page, (ms, _) in figures[size].items():
            lines.append(report(f"dashboard_{page}_{label}_ms", ms, 1))
    lines.append(report("dashboard_fleet_100k_bytes", big["fleet"][1], 0))
    return lines


if __name__ == "__main__":
    run()
