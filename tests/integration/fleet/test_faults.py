"""Faults under load: a replica killed mid-rollout, PostgreSQL restarted under the servers."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
from bench.fleet_agents import SimAgent, Stats

from tests.integration.fleet.conftest import Replicas
from tests.support.nginx import NginxProxy
from tests.support.postgres import PostgresServer, _pg_bin
from tests.support.procs import free_port, wait_until
from tests.support.server import BinManager

NODES = 30
TICK = 1.0
LIMIT = 120.0  # seconds: a bound on waiting, not a measurement


async def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(int(LIMIT / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _rollout_killing(api: str, first: BinManager, second: BinManager) -> Stats:
    installed = {"app": first.publish("app", b"app 1"), "tool": first.publish("tool", b"tool 1")}
    stats, stop = Stats(), asyncio.Event()
    agents = [SimAgent(api, f"node-{i:02d}", installed, stats, TICK) for i in range(NODES)]
    tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
    await _wait_for(lambda: all(agent.registered for agent in agents), "registrations")
    new = await asyncio.to_thread(first.publish, "app", b"app 2")
    stats.watch = ("app", new)
    await _wait_for(lambda: len(stats.reported) >= NODES // 4, "a quarter of the reports")
    await asyncio.to_thread(second.kill)  # SIGKILL, mid-rollout
    await _wait_for(lambda: len(stats.reported) == NODES, "every node's report")
    stop.set()
    await asyncio.gather(*tasks)
    return stats


def test_killing_a_replica_mid_rollout_loses_no_report(
    postgres_url: str,
    replicas: Replicas,
    nginx_factory: Callable[[list[BinManager]], NginxProxy],
) -> None:
    first, second = replicas(postgres_url, 2)
    nginx = nginx_factory([first, second])
    stats = asyncio.run(_rollout_killing(nginx.api, first, second))
    assert stats.watch is not None
    new = stats.watch[1]
    assert not second.service.running()
    nodes = first.admin_get("/bins/app/nodes").json()["data"]
    assert len(nodes) == NODES
    assert {node["sha256"] for node in nodes} == {new}
    progress = first.admin_get("/bins/app/progress").json()["data"]
    succeeded = {p["nodeName"] for p in progress if p["status"] == "success"}
    assert succeeded == {f"node-{i:02d}" for i in range(NODES)}


def test_servers_recover_from_a_postgres_restart(
    replicas: Replicas, nginx_factory: Callable[[list[BinManager]], NginxProxy]
) -> None:
    root = Path(tempfile.mkdtemp(prefix="bin-manager-pg-restart-"))
    pg = PostgresServer(root=root, port=free_port(), bin_dir=_pg_bin())
    try:
        pg.start()
        first, second = replicas(pg.url(pg.create_database()), 2)
        nginx = nginx_factory([first, second])
        sha = first.publish("app", b"app 1")
        pids = (first.service.pid, second.service.pid)

        restarted = pg._as_postgres(
            str(pg.bin_dir / "pg_ctl"),
            *("-D", str(pg.data), "-l", str(root / "postgres.log")),
            *("-m", "fast", "-w", "restart"),
        )
        assert restarted.returncode == 0, restarted.stderr

        def ready(server: BinManager) -> bool:  # /readyz writes to the database
            with server.client() as http:
                return http.get(f"{server.url}/readyz").status_code == 200

        # Pooled connections died with the restart: the servers open new ones by themselves.
        wait_until(lambda: ready(first) and ready(second), LIMIT, "readyz after restart")
        new = first.publish("app", b"app 2")
        info = {"nodeName": "n1", "cpuArch": "x86_64", "osRelease": "t", "binProxyVersion": "1"}
        with httpx.Client(timeout=30) as http:
            for server in (first, second):
                assert http.post(f"{server.api}/keepalive", json=info).status_code == 200
                polled = http.get(f"{server.api}/bins", params={"nodeName": "n1", "arch": "x86_64"})
                assert polled.json()["data"]["bins"]["app"] in {sha, new}
            wait_until(
                lambda: (
                    http.get(f"{nginx.api}/bins", params={"arch": "x86_64"}).json()["data"]["bins"]
                    == {"app": new}
                ),
                LIMIT,
                "both replicas to answer the new release",
            )
        assert (first.service.pid, second.service.pid) == pids
        assert first.service.running()
        assert second.service.running()
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
