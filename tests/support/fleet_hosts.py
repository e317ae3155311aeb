"""A small real fleet for the staged-rollout tests: one bin-manager, one supervisord, and
several hosts, each a real `ansible-proxy run` with its own NODE_NAME, BIN_DIR, STORE_DIR,
LOCK_DIR, manifest and node credential.

The hosts share one supervisord: each host's program is named `<bin>-<node>` (its
manifest's serviceName) while its binaryName is the bin itself. Ticks are driven by the
test (`Fleet.tick`, every host at once, in parallel); `Watcher` records, from a thread,
what GET /bins/{bin} tells each node, for checks of when a node was first told a release.
"""

from __future__ import annotations

import calendar
import json
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.agent import Agent, program
from tests.support.procs import wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

ARCH = "x86_64"  # the agents report `uname -m`; the tests run on x86_64
FAST_CHECKS = {"BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS": "0.5"}


class FleetHost(Agent):
    """One host of the fleet: the agent's layout, its node name, its supervisor program."""

    def __init__(
        self,
        root: Path,
        server: BinManager,
        supervisord: Supervisord,
        node: str,
        bin_name: str,
        labels: str = "",
    ) -> None:
        super().__init__(root, server.api, supervisord.socket_url, server.enrolment_token)
        self.node = node
        self.bin_name = bin_name
        self.program = f"{bin_name}-{node}"
        self.supervisord = supervisord
        self.env["NODE_NAME"] = node
        self.env["WATCH_SECONDS"] = "1"
        self.env["CHECK_FAILURES"] = "2"
        if labels:
            self.env["NODE_LABELS"] = labels
        doc = {
            "binaries": [
                {
                    "serviceName": self.program,
                    "binaryName": bin_name,
                    "version": "",
                    "previousVersion": "",
                }
            ],
            "nodeInfo": {"cpuArch": "", "osRelease": "", "nodeName": "", "binProxyVersion": ""},
        }
        self.manifest_path.write_text(json.dumps(doc, indent=2))

    def history(self) -> dict[str, str]:
        """sha256 → "ok" / "err" / "" of every version this host handled."""
        found: dict[str, str] = self.entry(self.bin_name).get("history", {})
        return found

    def sha(self) -> str | None:
        """The sha256 of the binary in BIN_DIR now."""
        return self.installed_sha(self.bin_name)

    def pid(self) -> int:
        return self.supervisord.pid(self.program)

    def state(self) -> str:
        return self.supervisord.state(self.program)

    def downloads(self) -> int:
        """How many releases this host has downloaded (each download is one log line)."""
        return self.log().count("downloaded and verified")

    def check(self) -> tuple[int, dict[str, Any]]:
        """`ansible-proxy check --json` on this host: (exit code, its answer)."""
        result = self.run("--json", command="check")
        assert result.returncode in (0, 1, 3), self.debug(result)
        answer: dict[str, Any] = json.loads(result.stdout)
        return result.returncode, answer


class Fleet:
    """The hosts of one bin on one server and one supervisord."""

    def __init__(
        self,
        root: Path,
        server: BinManager,
        supervisord: Supervisord,
        nodes: Sequence[str],
        bin_name: str = "web",
        labels: dict[str, str] | None = None,
    ) -> None:
        self.server = server
        self.supervisord = supervisord
        self.bin_name = bin_name
        self.hosts = {
            node: FleetHost(
                root / node, server, supervisord, node, bin_name, (labels or {}).get(node, "")
            )
            for node in nodes
        }

    def __getitem__(self, node: str) -> FleetHost:
        return self.hosts[node]

    # -- hosts -----------------------------------------------------------------------
    def add_programs(self, autorestart: bool = True) -> None:
        """Define each host's supervisor program (it starts once its binary is installed).

        `autorestart=False`: a program that exits stays EXITED, as a service whose crash
        supervisor is not told to hide; the inspector then sees it down.
        """
        for host in self.hosts.values():
            (self.supervisord.confd / f"{host.program}.conf").write_text(
                textwrap.dedent(f"""\
                [program:{host.program}]
                command={host.binary(self.bin_name)}
                autostart=true
                autorestart={"true" if autorestart else "false"}
                startsecs=1
                startretries=1
                stopwaitsecs=3
                stdout_logfile={self.supervisord.workdir}/{host.program}.log
                redirect_stderr=true
                """)
            )
        self.supervisord.call("reloadConfig")
        for host in self.hosts.values():
            self.supervisord.call("addProcessGroup", host.program)

    def tick(
        self, nodes: Iterable[str] | None = None, expect: Sequence[int] = (0,)
    ) -> dict[str, subprocess.CompletedProcess[str]]:
        """One `ansible-proxy run` on each of `nodes` (default every host), all at once."""
        chosen = [self.hosts[node] for node in (self.hosts if nodes is None else nodes)]
        started = [(host, host.spawn()) for host in chosen]
        results: dict[str, subprocess.CompletedProcess[str]] = {}
        for host, proc in started:
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise AssertionError(f"{host.node}: tick still running after 120 s") from None
            result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            assert result.returncode in expect, f"{host.node}: {host.debug(result)}"
            results[host.node] = result
        return results

    def behind(self) -> list[str]:
        """The hosts told a release they do not run (and have not found bad)."""
        with self.server.client() as http:
            answers = {node: told(http, self.server, self.bin_name, node) for node in self.hosts}
        return [
            node
            for node, sha in answers.items()
            if self.hosts[node].sha() != sha and self.hosts[node].history().get(sha) != "err"
        ]

    def converge(
        self, until: Callable[[dict[str, Any]], bool], what: str, timeout: float = 120
    ) -> dict[str, Any]:
        """Tick the hosts that are behind until `until(rollout)`; the rollout then.

        Hosts with nothing to do are not ticked (every tick costs a Python start on a
        shared machine): the rollout only waits for its own bake and checks.
        """
        deadline = time.monotonic() + timeout
        while True:
            rollout = self.rollout()
            if until(rollout):
                return rollout
            assert time.monotonic() < deadline, f"{what}: {json.dumps(rollout, indent=1)}"
            behind = self.behind()
            if behind:
                self.tick(behind)
            else:
                time.sleep(0.25)

    def install(self, content: bytes, autorestart: bool = True) -> str:
        """The first release, on every host (a first release goes to every node at once)."""
        sha = self.server.publish(self.bin_name, content)
        self.add_programs(autorestart)
        self.tick()
        for host in self.hosts.values():
            assert host.sha() == sha, f"{host.node}:\n{host.log()}"
            self.supervisord.wait_running(host.program)
        return sha

    def pids(self) -> dict[str, int]:
        return {node: host.pid() for node, host in self.hosts.items()}

    def shas(self) -> dict[str, str | None]:
        return {node: host.sha() for node, host in self.hosts.items()}

    # -- the server, as the operator sees it ----------------------------------------
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`bin-manager ARGS` as an operator runs it (server and token from the env)."""
        result = self.server.cli(*args)
        if check:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def set_policy(self, *options: str) -> None:
        """`bin-manager rollout set BIN OPTIONS`."""
        self.cli("rollout", "set", self.bin_name, *options)

    def status(self) -> dict[str, Any]:
        """`bin-manager rollout status BIN --json`, from the admin API (it is the same data)."""
        with self.server.client() as http:
            answer = http.get(
                f"{self.server.api}/admin/bins/{self.bin_name}/rollout",
                headers=self.server.admin_headers,
            )
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    def rollout(self) -> dict[str, Any]:
        """The newest rollout of the bin for x86_64, as `rollout status` shows it."""
        rollout: dict[str, Any] = next(r for r in self.status()["rollouts"] if r["arch"] == ARCH)
        return rollout

    def waves(self) -> list[list[str]]:
        """The node names of each wave of the newest rollout, canary first."""
        return [[node["name"] for node in wave["nodes"]] for wave in self.rollout()["waves"]]

    def node_states(self) -> dict[str, str]:
        """node → waiting | upgrading | baking | healthy | failed | offline."""
        return {
            node["name"]: node["state"]
            for wave in self.rollout()["waves"]
            for node in wave["nodes"]
        }

    def wait_rollout(self, what: str, timeout: float = 30, **wanted: Any) -> dict[str, Any]:
        """Wait until the newest rollout has each `wanted` field (state="completed", wave=1)."""
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.rollout())
            return all(found.get(key) == value for key, value in wanted.items())

        try:
            wait_until(reached, timeout, what)
        except TimeoutError:
            raise AssertionError(f"{what}: rollout is {json.dumps(found, indent=1)}") from None
        return found

    def told(self, node: str) -> str:
        """What GET /bins/{bin} tells `node` now."""
        with self.server.client() as http:
            return told(http, self.server, self.bin_name, node)

    def events(self, prefix: str = "rollout-") -> list[dict[str, Any]]:
        """The activity log's rollout steps of the bin, oldest first."""
        with self.server.client() as http:
            answer = http.get(f"{self.server.api}/admin/events", headers=self.server.admin_headers)
        assert answer.status_code == 200, answer.text
        rows = [
            row
            for row in answer.json()["data"]
            if row["kind"].startswith(prefix) and row["binName"] == self.bin_name
        ]
        return list(reversed(rows))

    def progress(self, node: str) -> list[dict[str, Any]]:
        """The node's progress reports, oldest first."""
        with self.server.client() as http:
            answer = http.get(
                f"{self.server.api}/admin/nodes/{node}", headers=self.server.admin_headers
            )
        assert answer.status_code == 200, answer.text
        return list(reversed(answer.json()["data"]["progress"]))

    def metrics(self) -> str:
        with self.server.client() as http:
            answer = http.get(f"{self.server.url}/metrics", headers=self.server.admin_headers)
        assert answer.status_code == 200, answer.text
        return answer.text


def told(http: httpx.Client, server: BinManager, bin_name: str, node: str) -> str:
    answer = http.get(
        f"{server.api}/bins/{bin_name}",
        params={"nodeName": node, "arch": ARCH},
        headers=server.admin_headers,
    )
    assert answer.status_code == 200, answer.text
    sha: str = answer.json()["data"]["sha256"]
    return sha


def stamp(iso: str) -> float:
    """A server time (`2026-01-02T03:04:05Z`, whole seconds, UTC) as Unix time."""
    return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))


class Watcher:
    """Polls GET /bins/{bin} for every node from a thread; remembers each answer's time.

    `first(node, sha)` is the Unix time at which the first answer telling `node` `sha`
    had arrived: the server decided it no later than that (so a node told a release too
    early shows as an answer before the moment it should have been told it).
    A server that is down (a restart) is simply not recorded.
    """

    def __init__(self, fleet: Fleet, interval: float = 0.25) -> None:
        self.fleet = fleet
        self.interval = interval
        self.answers: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        server = self.fleet.server
        with server.client(timeout=5) as http:
            while not self._stop.is_set():
                for node in self.fleet.hosts:
                    try:
                        sha = told(http, server, self.fleet.bin_name, node)
                    except (httpx.HTTPError, AssertionError, ValueError):
                        continue  # the server is down or restarting
                    with self._lock:  # the answer's time: never earlier than the server's
                        self.answers.append((time.time(), node, sha))
                self._stop.wait(self.interval)

    def first(self, node: str, sha: str) -> float | None:
        with self._lock:
            return next((at for at, who, got in self.answers if who == node and got == sha), None)

    def told_ever(self, node: str) -> set[str]:
        with self._lock:
            return {got for _, who, got in self.answers if who == node}

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)


def success_at(fleet: Fleet, node: str, sha: str) -> float:
    """When the server took `node`'s report that `sha` is installed (whole seconds)."""
    times = [
        stamp(row["reportedAt"])
        for row in fleet.progress(node)
        if row["targetHash"] == sha and row["status"] == "success"
    ]
    assert times, f"{node} never reported {sha[:12]} installed: {fleet.progress(node)}"
    return times[0]


def assert_waited_for_bakes(
    fleet: Fleet, watcher: Watcher, waves: list[list[str]], shas: tuple[str, str], bake: int
) -> None:
    """Each wave (and the completion) came only once the wave before stayed healthy for
    `bake` seconds, by the server's activity log; and no poll told a node of a later
    wave the new release before then (the server's times are whole seconds, rounded
    down, so `baked` is never later than the real moment)."""
    old, new = shas
    steps = [
        event
        for event in fleet.events()
        if event["kind"] in ("rollout-promote", "rollout-complete")
    ]
    assert [event["kind"] for event in steps] == ["rollout-promote"] * (len(waves) - 1) + [
        "rollout-complete"
    ]
    for index, step in enumerate(steps, start=1):
        baked = max(success_at(fleet, node, new) for node in waves[index - 1]) + bake
        assert stamp(step["at"]) >= baked, (index, step, baked)
        for node in waves[index] if index < len(waves) else []:
            first = watcher.first(node, new)
            assert first is not None, f"{node} was never told {new[:12]}"
            assert first >= baked, (node, first, baked)
            assert watcher.told_ever(node) == {old, new}, node


__all__ = [
    "ARCH",
    "FAST_CHECKS",
    "Fleet",
    "FleetHost",
    "Watcher",
    "assert_waited_for_bakes",
    "program",
    "stamp",
    "success_at",
]
