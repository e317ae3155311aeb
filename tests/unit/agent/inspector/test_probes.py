"""The inspector's hooks into the agent's adapters: who holds a binary, which process runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ansible_proxy.client import locks
from ansible_proxy.client.processes import running_named
from tests.support.procs import wait_until

A, B = "a" * 64, "b" * 64


def test_held_by_other_sees_a_live_lock_of_any_version(tmp_path: Path) -> None:
    assert not locks.held_by_other(tmp_path / "missing", "hello")
    (tmp_path / f"hello-{A}.lock").write_text("1\n")  # left by a dead run: not held
    assert not locks.held_by_other(tmp_path, "hello")
    held = locks.acquire(tmp_path, "hello", B, timeout=600)
    assert held is not None
    try:
        assert locks.held_by_other(tmp_path, "hello")
        assert not locks.held_by_other(tmp_path, "hell")  # another binary
    finally:
        held.release()
    assert not locks.held_by_other(tmp_path, "hello")


def test_running_named_finds_a_script_by_its_file_name(tmp_path: Path) -> None:
    name = f"probe-{tmp_path.name}"
    script = tmp_path / name
    script.write_text("import time\ntime.sleep(60)\n")
    assert running_named((name,)) is None
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        wait_until(lambda: running_named((name,)) == proc.pid, 10, "the probe process")
    finally:
        proc.kill()
        proc.wait(5)
    assert running_named((name,)) is None
