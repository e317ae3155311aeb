"""Inspector fixtures: a host managed by the real agent, checked by `ansible-proxy check`.

`Host` extends the agent's host layout with the inspector's keys and a `check()` that
runs the real console script with `--json`. `breakable()` makes test programs that a
test can make crash (FATAL) or close their port by creating a flag file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import Agent
from tests.support.prometheus import Prometheus
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


class Host(Agent):
    """The agent's host layout plus the inspector: PROMETHEUS_URL, CHECK_FAILURES."""

    def __init__(self, root: Path, api: str, supervisor_url: str) -> None:
        super().__init__(root, api, supervisor_url)
        self.flags = root / "flags"
        self.flags.mkdir()
        self.env["CHECK_FAILURES"] = "2"
        self.env["WATCH_SECONDS"] = "1"  # upgrades and rollbacks are watched 1 s: fast tests
        self.state_file = root / "inspector-state.json"  # beside STORE_DIR

    def check(self, *flags: str, **env: str) -> tuple[int, dict[str, Any]]:
        """Run `ansible-proxy check --json`; returns (exit code, the JSON answer)."""
        result = self.run("--json", *flags, command="check", **env)
        assert result.returncode in (0, 1, 3), self.debug(result)
        answer: dict[str, Any] = json.loads(result.stdout)
        return result.returncode, answer

    def install(
        self,
        bin_manager: BinManager,
        supervisord: Supervisord,
        name: str,
        *contents: bytes,
        port: int | None = None,
    ) -> list[str]:
        """Manage `name` and install each version in turn with the real agent."""
        self.write_manifest(name, ports={name: port} if port else None)
        supervisord.add_program(name, self.binary(name))
        shas = []
        for content in contents:
            shas.append(bin_manager.publish(name, content))
            result = self.run()
            assert result.returncode == 0, self.debug(result)
            supervisord.wait_running(name)
        return shas

    def service(self, answer: dict[str, Any], name: str) -> dict[str, Any]:
        row: dict[str, Any] = next(s for s in answer["services"] if s["service"] == name)
        return row

    def flag(self, tag: str, what: str) -> None:
        """Make version `tag` of `breakable()` crash ("fatal") or close its port ("close")."""
        (self.flags / f"{tag}.{what}").touch()


def breakable(host: Host, tag: str, port: int | None = None) -> bytes:
    """A program that runs (and listens on `port`) until its flag files say otherwise."""
    fatal = str(host.flags / f"{tag}.fatal")
    close = str(host.flags / f"{tag}.close")
    return f"""#!{sys.executable}
# inspector test program, version {tag}
import os, socket, sys, time
if os.path.exists({fatal!r}):
    sys.exit(3)
s = None
if {port!r} is not None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", {port!r}))
    s.listen()
while True:
    if os.path.exists({fatal!r}):
        sys.exit(3)
    if s is not None and os.path.exists({close!r}):
        s.close()
        s = None
    time.sleep(0.1)
""".encode()


def progress(bin_manager: BinManager, node: str = "host-001") -> list[tuple[str, str]]:
    """(targetHash, status) of every progress report of `node`, oldest first."""
    detail = bin_manager.admin_get(f"/nodes/{node}").json()["data"]
    return [(p["targetHash"], p["status"]) for p in reversed(detail["progress"])]


def reported_sha(bin_manager: BinManager, name: str, node: str = "host-001") -> str:
    detail = bin_manager.admin_get(f"/nodes/{node}").json()["data"]
    return str(next(b["sha256"] for b in detail["bins"] if b["binName"] == name))


@pytest.fixture
def host(tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord) -> Host:
    return Host(tmp_path / "host", bin_manager.api, supervisord.socket_url)


@pytest.fixture
def watched_host(host: Host, prometheus: Prometheus) -> Host:
    """A host whose inspector asks the real Prometheus for alerts."""
    host.env["PROMETHEUS_URL"] = prometheus.url
    return host


def spawn_check(host: Host) -> subprocess.Popen[str]:
    return subprocess.Popen(
        host.argv("check", "--json"),
        env=host.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
