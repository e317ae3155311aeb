"""agent/switch.py for a binary entry: the stored release put in BIN_DIR, restarted and
watched; an unhealthy one rolled back to the previous release, or, with none, the service
stopped and its file removed.

In milliseconds: supervisord's XML-RPC is played on a loopback server (the calls
adapters/supervisor.py makes, over its own transport), each program "running" its file
in BIN_DIR. Real supervisord runs these switches in tests/integration/agent/.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ansible_proxy.agent.adapters.store import Store
from ansible_proxy.agent.adapters.supervisor import Supervisor
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.agent.switch import SwitchContext, switch_binary
from ansible_proxy.client.logs import Log
from ansible_proxy.errors import DeployError
from tests.support.loopback import Exchange, Loopback

GOOD, BETTER, CRASHING = b"#!/bin/sh\necho v1\n", b"#!/bin/sh\necho v2\n", b"crash\n"
BAD_NAME, ALREADY_STARTED, NOT_RUNNING = 10, 60, 70  # supervisor.xmlrpc.Faults


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Programs:
    """supervisord's XML-RPC, as far as adapters/supervisor.py asks it: a program started
    runs its file in BIN_DIR, which stays up (RUNNING, a new pid) unless its content
    starts with b"crash" (FATAL, exit status 3) or there is none (FATAL, spawnerr)."""

    def __init__(self, bin_dir: Path, *names: str) -> None:
        self.bin_dir = bin_dir
        self.info = {name: {"statename": "STOPPED", "pid": 0, "exitstatus": 0} for name in names}
        self.calls: list[str] = []
        self._pids = itertools.count(4000)
        self.server = Loopback({"/RPC2": self.rpc}, keep_alive=False)  # no idle socket left

    def rpc(self, req: Exchange) -> None:
        params, called = xmlrpc.client.loads(req.body)
        method, name = str(called), str(params[0]) if params else ""
        self.calls.append(f"{method.removeprefix('supervisor.')} {name}".strip())
        try:
            result = self.answer(method, name)
            body = xmlrpc.client.dumps((result,), methodresponse=True)
        except xmlrpc.client.Fault as fault:
            body = xmlrpc.client.dumps(fault, methodresponse=True)
        req.reply(200, body.encode(), "text/xml")

    def answer(self, method: str, name: str) -> Any:
        if method == "supervisor.getAllConfigInfo":
            return [{"name": program, "stopwaitsecs": 1} for program in self.info]
        if name not in self.info:
            raise xmlrpc.client.Fault(BAD_NAME, f"BAD_NAME: {name}")
        info = self.info[name]
        if method == "supervisor.getProcessInfo":
            return {"name": name, "spawnerr": "", **info}
        running = info["statename"] == "RUNNING"
        if method == "supervisor.stopProcess":
            if not running:
                raise xmlrpc.client.Fault(NOT_RUNNING, f"NOT_RUNNING: {name}")
            info.update(statename="STOPPED", pid=0)
            return True
        if method == "supervisor.startProcess":
            if running:
                raise xmlrpc.client.Fault(ALREADY_STARTED, f"ALREADY_STARTED: {name}")
            binary = self.bin_dir / name
            if binary.exists() and not binary.read_bytes().startswith(b"crash"):
                info.update(statename="RUNNING", pid=next(self._pids), exitstatus=0)
            else:
                info.update(statename="FATAL", pid=0, exitstatus=3)
            return True
        raise xmlrpc.client.Fault(1, f"UNKNOWN_METHOD: {method}")

    def state(self, name: str) -> str:
        return str(self.info[name]["statename"])


@dataclass
class Host:
    """BIN_DIR, the store, supervisord's stand-in, the log and the crash points passed."""

    bin_dir: Path
    store: Store
    programs: Programs
    lines: io.StringIO
    crashes: list[str]

    def context(self) -> SwitchContext:
        supervisor = Supervisor(self.programs.server.url, timeout=5.0)
        log = Log(None, echo=self.lines)
        return SwitchContext(supervisor, self.store, self.bin_dir, 0.0, log, self.crashes.append)

    def keep(self, content: bytes) -> str:
        """`content` stored as a release of hello (as a verified download leaves it)."""
        path = self.store.path("hello", sha(content))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return sha(content)

    def running(self, content: bytes) -> None:
        """hello runs `content` from BIN_DIR, as after an earlier install."""
        self.bin_dir.mkdir(exist_ok=True)
        (self.bin_dir / "hello").write_bytes(content)
        (self.bin_dir / "hello").chmod(0o750)
        self.programs.answer("supervisor.startProcess", "hello")

    def log(self) -> list[str]:
        """The log's lines, without their time and pid."""
        return [line.split("] ", 1)[1] for line in self.lines.getvalue().splitlines()]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    programs = Programs(tmp_path / "bin", "hello")
    with programs.server:
        yield Host(tmp_path / "bin", Store(tmp_path / "store"), programs, io.StringIO(), [])


ENTRY = ManagedBinary("hello", "hello")


def test_a_healthy_release_replaces_the_file_and_is_restarted(host: Host) -> None:
    host.running(GOOD)
    old, new = host.keep(GOOD), host.keep(BETTER)
    pid = host.programs.info["hello"]["pid"]
    assert switch_binary(host.context(), ENTRY, new, old) == ""
    installed = host.bin_dir / "hello"
    assert installed.read_bytes() == BETTER
    assert installed.stat().st_mode & 0o777 == 0o750  # the file's mode kept
    assert host.programs.state("hello") == "RUNNING"
    assert host.programs.info["hello"]["pid"] != pid
    assert host.crashes == ["after-replace", "after-restart"]
    assert host.log() == []
    assert sorted(p.name for p in host.bin_dir.iterdir()) == ["hello"]  # no temp file left


def test_an_unhealthy_release_is_rolled_back_to_the_previous_one(host: Host) -> None:
    host.running(GOOD)
    old, bad = host.keep(GOOD), host.keep(CRASHING)
    reason = switch_binary(host.context(), ENTRY, bad, old)
    assert reason == "hello is FATAL after restart (exit status 3)"
    assert (host.bin_dir / "hello").read_bytes() == GOOD
    assert host.programs.state("hello") == "RUNNING"
    assert host.log() == [
        f"WARNING hello@{bad[:12]}: unhealthy: {reason}; rolling back",
        f"INFO hello@{old[:12]}: rolled back, previous version running",
    ]


def test_the_inspector_s_switch_back_is_not_rolled_back_again(host: Host) -> None:
    """previous None: the caller (the inspector's rollback) decides what a failure means."""
    host.running(GOOD)
    bad = host.keep(CRASHING)
    reason = switch_binary(host.context(), ENTRY, bad, None)
    assert reason == "hello is FATAL after restart (exit status 3)"
    assert (host.bin_dir / "hello").read_bytes() == CRASHING
    assert host.log() == []


def test_a_first_install_that_fails_leaves_the_service_stopped_and_no_file(host: Host) -> None:
    bad = host.keep(CRASHING)
    host.bin_dir.mkdir()
    reason = switch_binary(host.context(), ENTRY, bad, "")
    assert reason == "hello is FATAL after restart (exit status 3)"
    assert not (host.bin_dir / "hello").exists()
    assert host.programs.state("hello") != "RUNNING"
    assert host.log()[-1] == (
        f"WARNING hello@{bad[:12]}: no previous version: service stopped, binary removed"
    )


def test_a_previous_version_gone_from_the_store_is_said_not_guessed(host: Host) -> None:
    host.running(GOOD)
    bad = host.keep(CRASHING)
    switch_binary(host.context(), ENTRY, bad, sha(GOOD))  # never stored
    assert host.log()[-1] == (
        f"ERROR hello@{sha(GOOD)[:12]}: previous version missing from the store: cannot roll back"
    )
    assert (host.bin_dir / "hello").read_bytes() == CRASHING


def test_a_previous_version_that_fails_too_is_said(host: Host) -> None:
    host.running(GOOD)
    old_bad, bad = host.keep(CRASHING + b"old"), host.keep(CRASHING)
    switch_binary(host.context(), ENTRY, bad, old_bad)
    assert host.log()[-1] == (
        f"ERROR hello@{old_bad[:12]}: rolled back but still unhealthy: "
        "hello is FATAL after restart (exit status 3)"
    )


def test_a_stored_release_changed_on_disk_is_never_put_in_place(host: Host) -> None:
    host.running(GOOD)
    new = host.keep(BETTER)
    host.store.path("hello", new).write_bytes(CRASHING)  # the disk, or a person, changed it
    with pytest.raises(DeployError, match=f"no longer hashes to {new[:12]}: not installed"):
        switch_binary(host.context(), ENTRY, new, sha(GOOD))
    assert (host.bin_dir / "hello").read_bytes() == GOOD
    assert host.programs.calls == []  # nothing restarted
    assert sorted(p.name for p in host.bin_dir.iterdir()) == ["hello"]
