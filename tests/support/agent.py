"""The agent as cron runs it: `.venv/bin/ansible-proxy run` with a bare environment.

`Agent` owns a host layout in a temp dir (BIN_DIR, STORE_DIR, LOCK_DIR, manifest, log,
config file) and runs the real console script as a subprocess. `program()` makes the
small real "binaries" the tests deploy: python scripts whose content differs per version.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

AGENT = Path(sys.executable).parent / "ansible-proxy"
# How the agent is run: the console script of this virtualenv, or (pytest --agent-python39,
# tests/support/py39.py) the one-file agent under a Debian 11 root's Python 3.9.
AGENT_COMMAND: list[str] = [str(AGENT)]


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def program(tag: str, mode: str = "ok", port: int | None = None, die_after: float = 2.5) -> bytes:
    """A managed program. mode: ok (runs), exit (exits at once), die (exits after a while)."""
    return f"""#!{sys.executable}
# test program, version {tag}
import socket, sys, time
if {mode!r} == "exit":
    sys.exit(3)
if {port!r} is not None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", {port!r}))
    s.listen()
if {mode!r} == "die":
    time.sleep({die_after!r})
    sys.exit(4)
while True:
    time.sleep(3600)
""".encode()


class Agent:
    """A host layout in `root` and the agent run against it."""

    def __init__(
        self, root: Path, api: str, supervisor_url: str, enrolment_token: str | None = None
    ) -> None:
        self.root = root
        self.bin_dir = root / "bin"
        self.store_dir = root / "store"
        self.lock_dir = root / "locks"
        self.manifest_path = root / "etc" / "bin-manifests.json"
        self.log_file = root / "log" / "ansible-proxy.log"
        self.config = root / "etc" / "config"
        self.command = list(AGENT_COMMAND)  # a test may run another agent (the one-file)
        for directory in (self.bin_dir, self.manifest_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(f'# written by the test\nexport BIN_MANAGER_API="{api}"\n')
        self.node_token_file = root / "node-token"  # beside STORE_DIR: the default place
        self.env: dict[str, str] = {
            "PATH": "/usr/bin:/bin",  # cron's PATH
            "HOME": str(root),
            "SHELL": "/bin/sh",
            "LOGNAME": "root",
            "ANSIBLE_PROXY_CONFIG": str(self.config),
            "BIN_DIR": str(self.bin_dir),
            "BIN_MANIFESTS": str(self.manifest_path),
            "LOG_FILE": str(self.log_file),
            "LOCK_DIR": str(self.lock_dir),
            "STORE_DIR": str(self.store_dir),
            "SUPERVISOR_URL": supervisor_url,
            "NODE_NAME": "host-001",
            "WATCH_SECONDS": "2",
            "HTTP_TIMEOUT": "20",  # generous: the machine is shared with other test suites
        }
        if enrolment_token:  # the agent enrols on its first tick (docs/security.md)
            self.env["ENROLMENT_TOKEN"] = enrolment_token
        if os.environ.get("PYTHONPATH"):  # a test run against another tree's src (old code)
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    def write_manifest(self, *names: str, ports: dict[str, int] | None = None) -> None:
        """An original-design JSON manifest managing `names` (nothing installed yet)."""
        binaries = [
            {
                "serviceName": name,
                "binaryName": name,
                "version": "",
                "previousVersion": "",
                **({"port": ports[name]} if ports and name in ports else {}),
            }
            for name in names
        ]
        doc = {
            "binaries": binaries,
            "nodeInfo": {"cpuArch": "", "osRelease": "", "nodeName": "", "binProxyVersion": ""},
        }
        self.manifest_path.write_text(json.dumps(doc, indent=2))

    def manifest(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return loaded

    def entry(self, name: str) -> dict[str, Any]:
        return next(b for b in self.manifest()["binaries"] if b["binaryName"] == name)

    def argv(self, command: str = "run", *flags: str) -> list[str]:
        return [*self.command, command, *flags]

    def run(
        self, *flags: str, command: str = "run", **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run one tick and wait for it."""
        return subprocess.run(
            self.argv(command, *flags),
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def timed(
        self, command: str, *flags: str, limit: float = 30, **env: str
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run `command` as cron would; (result, seconds taken). Still running after
        `limit` s counts as a hang: it is killed and the test fails with the log."""
        start = time.monotonic()
        try:
            result = subprocess.run(
                self.argv(command, *flags),
                env={**self.env, **env},
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            pytest.fail(f"`ansible-proxy {command}` still running after {limit} s:\n{self.log()}")
        return result, time.monotonic() - start

    def spawn(self, **env: str) -> subprocess.Popen[str]:
        """Start a tick without waiting (for overlapping runs); the caller waits for it."""
        return subprocess.Popen(
            self.argv(),
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def installed_sha(self, name: str) -> str | None:
        path = self.binary(name)
        return sha256(path.read_bytes()) if path.exists() else None

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def leftovers(self) -> list[str]:
        """Temp files the agent left in BIN_DIR (a crash must never leave a partial binary)."""
        return sorted(p.name for p in self.bin_dir.iterdir() if p.name.startswith("."))

    def debug(self, result: subprocess.CompletedProcess[str]) -> str:
        return f"rc={result.returncode}\nstderr={result.stderr}\nlog:\n{self.log()}"
