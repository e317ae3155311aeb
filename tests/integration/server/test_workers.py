"""`bin-manager serve --workers N`: several processes on one port, one database, one store.

What an operator notices: requests are answered by more than one process, a publish
through one is what every process answers within the cache's second, registrations and
heartbeats through any of them land in the one database, and a stop ends every process.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.support.answers import node_info
from tests.support.procs import wait_until
from tests.support.server import BIN_MANAGER_SCRIPT, BinManagerFactory


def _workers(pid: int) -> list[psutil.Process]:
    """uvicorn's worker processes (its multiprocessing helpers have no listening role)."""
    return [
        child
        for child in psutil.Process(pid).children(recursive=True)
        if "multiprocessing.resource_tracker" not in " ".join(child.cmdline())
    ]


def test_two_workers_share_the_port_the_database_and_the_store(
    bin_manager_factory: BinManagerFactory,
) -> None:
    server = bin_manager_factory(extra_args=["--workers", "2"])
    workers = _workers(server.service.pid)
    assert len(workers) == 2, [w.cmdline() for w in workers]

    first = server.publish("app", b"app version one")
    with httpx.Client(timeout=30) as http:
        # Every node registers through whichever process accepts its connection.
        for i in range(20):
            with httpx.Client(timeout=30) as fresh:  # a new connection, as each agent tick
                answer = fresh.post(f"{server.api}/keepalive", json=node_info(f"w-{i:02d}"))
                assert answer.status_code == 200
        listed = server.admin_get("/nodes").json()["data"]
        assert {n["nodeName"] for n in listed} >= {f"w-{i:02d}" for i in range(20)}

        second = server.publish("app", b"app version two")
        assert second != first
        time.sleep(1.1)  # the other process's cached pointer is at most one second old
        for _ in range(20):
            with httpx.Client(timeout=30) as fresh:
                polled = fresh.get(f"{server.api}/bins", params={"arch": "x86_64"})
                assert polled.json()["data"]["bins"] == {"app": second}
                got = fresh.get(f"{server.api}/download/app", params={"arch": "x86_64"})
                assert got.content == b"app version two"
        assert http.get(f"{server.url}/healthz").status_code == 200

    # Both processes answer: open connections, then see which process holds each. Which
    # process accepts a connection is the kernel's choice: on a busy machine one may take
    # a whole batch, so batches are opened (200 connections at most) until both hold some.
    clients: list[httpx.Client] = []
    holders: dict[int, set[int]] = {}
    try:
        for _ in range(10):
            batch = [httpx.Client(timeout=30) for _ in range(20)]
            clients += batch
            for client in batch:
                assert client.get(f"{server.url}/healthz").status_code == 200
            holders = {worker.pid: _peer_ports(worker) for worker in workers}
            if all(holders.values()):
                break
            time.sleep(0.2)
        assert all(holders.values()), holders
    finally:
        for client in clients:
            client.close()

    server.stop()
    wait_until(lambda: not any(_alive(worker) for worker in workers), 15, "the workers' exit")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _peer_ports(worker: psutil.Process) -> set[int]:
    """Remote ports of the established connections this process holds."""
    return {c.raddr.port for c in worker.net_connections(kind="tcp") if c.status == "ESTABLISHED"}


def test_workers_refuse_to_run_without_an_admin_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(BIN_MANAGER_SCRIPT),
            "serve",
            "--workers",
            "2",
            "--insecure-no-auth",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2
    assert "--workers above 1 needs an admin token" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was created
