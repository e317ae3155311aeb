"""The server's own trouble is no node's silence (issue 26.1): a bin-manager killed and
restarted, its database stopped or locked, its clock stepped — each in the middle of a
bake — neither fails a healthy node nor halts the rollout, and no bake ends early.

The hosts' agents call every second from a thread (`Callers`), as their ticks would; a
fault keeps them quiet, and for a few seconds after it (a node calls again at its next
tick). Silence counts only time the server was up, writing and able to hear, so after
each outage every node has a whole silent window again.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.rollouts.conftest import MakeFleet
from tests.support.fleet_hosts import FAST_CHECKS, Fleet, Watcher, program
from tests.support.postgres import running_postgres
from tests.support.server import BinManager, BinManagerFactory

SILENT = 8  # BIN_MANAGER_ROLLOUT_SILENT_SECONDS: each fault lasts longer
BAKE = 5
QUIET_AFTER = 3  # after a fault the nodes call again within this, well inside SILENT
NODES = ("host-1", "host-2")
FAST = {"BIN_MANAGER_ROLLOUT_SILENT_SECONDS": str(SILENT)}
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


class Callers:
    """Every host's GET /keepalive with its own node token, each second, from a thread (to
    the fleet's server, or to `server`: another replica)."""

    def __init__(self, fleet: Fleet, server: BinManager | None = None) -> None:
        self.fleet = fleet
        self.server = server or fleet.server
        self._quiet = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        server = self.server
        with server.client(timeout=2) as http:
            while not self._stop.is_set():
                for node, host in self.fleet.hosts.items():
                    if self._quiet.is_set() or not host.node_token_file.exists():
                        continue  # quiet, or not enrolled yet (its first tick enrols)
                    token = host.node_token_file.read_text().strip()
                    with contextlib.suppress(httpx.HTTPError):  # down: the next call retries
                        http.get(
                            f"{server.api}/keepalive",
                            params={"nodeName": node},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                self._stop.wait(1)

    @contextmanager
    def running(self) -> Iterator[Callers]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """No node calls during the block, nor for QUIET_AFTER seconds after it."""
        self._quiet.set()
        try:
            yield
            time.sleep(QUIET_AFTER)
        finally:
            self._quiet.clear()


def start_bake(fleet: Fleet) -> tuple[str, str, list[str], list[str], float]:
    """v1 everywhere, v2 published and installed by the canary: (v1, v2, canary, the rest,
    a moment before the canary's success)."""
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", str(BAKE),
                     "--max-failures", "1")  # fmt: skip
    v2 = fleet.server.publish("web", program("2"))
    canary, rest = fleet.waves()
    started = time.time()
    fleet.tick(canary)
    assert fleet.node_states()[canary[0]] == "baking", fleet.rollout()
    return v1, v2, canary, rest, started


def assert_completed_healthy(
    fleet: Fleet, watcher: Watcher, v2: str, rest: list[str], started: float
) -> dict[str, Any]:
    """The rollout completes with no node failed and no halt, and the rest of the fleet
    was told v2 only once the canary had baked for BAKE seconds."""
    rollout = fleet.converge(
        lambda rollout: rollout["state"] in ("completed", "halted"), "the rollout ends", 90
    )
    assert rollout["state"] == "completed", rollout
    assert set(fleet.node_states().values()) == {"healthy"}, rollout
    kinds = {event["kind"] for event in fleet.events()}
    assert not kinds & {"rollout-node-failed", "rollout-halt", "rollout-revert"}, kinds
    assert set(fleet.shas().values()) == {v2}
    for node in rest:
        first = watcher.first(node, v2)
        assert first is not None, node
        assert first >= started + BAKE, (node, first, started)
    return rollout


def test_a_server_killed_and_restarted_after_the_silent_window_fails_no_node(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet(nodes=NODES, extra_env=FAST)
    with Callers(fleet).running() as callers, Watcher(fleet).running() as watcher:
        _, v2, _, rest, started = start_bake(fleet)
        with callers.quiet():
            fleet.server.kill()
            time.sleep(SILENT + 2)
            fleet.server.start()
        assert_completed_healthy(fleet, watcher, v2, rest, started)


@contextmanager
def held_exclusively(database: Path) -> Iterator[None]:
    """Another process holds SQLite's write lock (BEGIN EXCLUSIVE) during the block."""
    script = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
        "db.execute('COMMIT')\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdin is not None
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            yield
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.wait(30) == 0
        finally:
            if holder.poll() is None:
                holder.kill()


def test_a_database_held_by_another_writer_fails_no_node(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=NODES, extra_env=FAST)
    database = fleet.server.data_dir / "bin-manager.sqlite3"
    with Callers(fleet).running() as callers, Watcher(fleet).running() as watcher:
        _, v2, _, rest, started = start_bake(fleet)
        with callers.quiet(), held_exclusively(database):
            time.sleep(SILENT + 4)
        assert_completed_healthy(fleet, watcher, v2, rest, started)


@pytest.mark.postgres
def test_postgresql_stopped_and_started_fails_no_node(make_fleet: MakeFleet) -> None:
    with running_postgres() as postgres:  # its own cluster: stopped here, and started again
        fleet = make_fleet(
            nodes=NODES, extra_env=FAST, database_url=postgres.url(postgres.create_database())
        )
        with Callers(fleet).running() as callers, Watcher(fleet).running() as watcher:
            _, v2, _, rest, started = start_bake(fleet)
            with callers.quiet():
                postgres.stop()
                time.sleep(SILENT + 4)
                postgres.start_again()
            assert_completed_healthy(fleet, watcher, v2, rest, started)
        fleet.server.stop()  # before its database goes


@pytest.mark.parametrize("step", ["+60", "-3600"])
def test_a_stepped_server_clock_neither_shortens_nor_stalls_a_bake(
    make_fleet: MakeFleet, tmp_path: Path, step: str
) -> None:
    """libfaketime steps the server's wall clock during the canary's bake, as NTP does (its
    monotonic clock goes on): a minute ahead, or an hour back."""
    assert LIBFAKETIME.exists(), "libfaketime is missing: run scripts/install-system-deps"
    offset = tmp_path / "faketime.rc"
    offset.write_text("+0\n")
    faked = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_CACHE_DURATION": "1",  # the file is read again each second
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    fleet = make_fleet(nodes=NODES, extra_env={**FAST, **faked})
    with Callers(fleet).running(), Watcher(fleet).running() as watcher:
        _, v2, _, rest, started = start_bake(fleet)
        offset.write_text(f"{step}\n")
        assert_completed_healthy(fleet, watcher, v2, rest, started)


@pytest.mark.postgres
def test_a_replica_whose_clock_is_a_minute_behind_fails_no_node(
    make_fleet: MakeFleet, bin_manager_factory: BinManagerFactory, tmp_path: Path
) -> None:
    """Two replicas on one PostgreSQL database; the nodes' calls during the bake all go to
    the one whose clock is a minute behind (behind a load balancer, say)."""
    with running_postgres() as postgres:
        url = postgres.url(postgres.create_database())
        fleet = make_fleet(nodes=NODES, extra_env=FAST, database_url=url)
        behind = tmp_path / "faketime.rc"
        behind.write_text("-60\n")
        faked = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(behind),
                 "FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # fmt: skip
        replica = bin_manager_factory(
            node_auth="required", database_url=url, extra_env={**FAST_CHECKS, **FAST, **faked}
        )
        with (
            Callers(fleet, replica).running(),
            Watcher(fleet).running() as watcher,
        ):
            _, v2, _, rest, started = start_bake(fleet)
            assert_completed_healthy(fleet, watcher, v2, rest, started)
        replica.stop()
        fleet.server.stop()  # before its database goes
