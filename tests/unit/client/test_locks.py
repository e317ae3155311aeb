"""Lock files: creation time on line 1, flock by the holder, stale takeover, other versions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ansible_proxy.client import locks, processes

A, B = "a" * 64, "b" * 64

HOLDER = """
import sys, time
from pathlib import Path
from ansible_proxy.client import locks, processes
created = float(sys.argv[3])
age = time.time() - created  # a lock taken `age` seconds ago by both clocks
boot = processes.boot_clock() - max(age, 0.0)
held = locks.acquire(
    Path(sys.argv[1]), "app", sys.argv[2], 600, lambda: created, lambda: boot
)
print("held" if held else "busy", flush=True)
time.sleep(60)
"""


def hold(lock_dir: Path, sha: str, created: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), sha, str(created)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def end(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(5)
    assert proc.stdout is not None
    proc.stdout.close()


def test_lock_file_format_and_release(tmp_path: Path) -> None:
    held = locks.acquire(tmp_path, "app", A, 600, lambda: 1700000000.7)
    assert held is not None
    path = tmp_path / f"app-{A}.lock"
    lines = path.read_text().splitlines()
    assert lines[0] == "1700000000"
    assert held.created == 1700000000
    held.release()
    assert not path.exists()


def test_fresh_lock_held_by_a_live_run_is_respected(tmp_path: Path) -> None:
    proc = hold(tmp_path, A, time.time())
    try:
        assert locks.acquire(tmp_path, "app", A, 600) is None
        assert proc.poll() is None
    finally:
        end(proc)


def test_stale_lock_holder_is_ended_and_lock_taken_over(tmp_path: Path) -> None:
    proc = hold(tmp_path, A, time.time() - 3600)
    try:
        held = locks.acquire(tmp_path, "app", A, 600)
        assert held is not None
        proc.wait(10)  # ended by the new holder (psutil reaps it: no exit code to check)
        assert held.path.read_text().splitlines()[1].startswith(f"{os.getpid()} ")
        held.release()
    finally:
        end(proc)


def test_lock_of_a_killed_run_is_free_at_once(tmp_path: Path) -> None:
    proc = hold(tmp_path, A, time.time())
    end(proc)
    held = locks.acquire(tmp_path, "app", A, 600)
    assert held is not None
    held.release()


def test_a_fresh_holder_of_another_version_is_never_ended(tmp_path: Path) -> None:
    proc = hold(tmp_path, A, time.time())
    try:
        assert locks.acquire(tmp_path, "app", B, 600) is None
        assert proc.poll() is None  # still working
        assert (tmp_path / f"app-{A}.lock").exists()
        assert not (tmp_path / f"app-{B}.lock").exists()  # ours, given back
    finally:
        end(proc)


def test_new_version_removes_stale_and_dead_version_locks(tmp_path: Path) -> None:
    proc = hold(tmp_path, A, time.time() - 3600)
    dead = tmp_path / f"app-{'c' * 64}.lock"
    dead.write_text("1\n")  # nobody holds its flock: a killed run's
    other_bin = tmp_path / f"app-extra-{A}.lock"
    other_bin.write_text("1\n")
    try:
        held = locks.acquire(tmp_path, "app", B, 600)
        assert held is not None
        proc.wait(10)  # the stale holder was ended
        assert not (tmp_path / f"app-{A}.lock").exists()
        assert not dead.exists()
        assert other_bin.exists()  # another bin's lock is not ours to touch
        held.release()
    finally:
        end(proc)


def test_a_lock_from_the_future_is_stale_after_lock_timeout_of_its_own_age(
    tmp_path: Path,
) -> None:
    """The clock stepped back after the lock was taken: its age is told by the boot clock."""
    future = time.time() + 3600
    proc = hold(tmp_path, A, future)  # written at the boot clock's now
    try:
        assert locks.acquire(tmp_path, "app", A, 600) is None  # young: respected
        later = processes.boot_clock() + 601
        held = locks.acquire(tmp_path, "app", A, 600, boot_clock=lambda: later)
        assert held is not None
        proc.wait(10)
        held.release()
    finally:
        end(proc)


def test_a_clock_step_forward_does_not_make_a_fresh_lock_stale(tmp_path: Path) -> None:
    proc = hold(tmp_path, A, time.time())
    try:
        assert locks.acquire(tmp_path, "app", A, 600, clock=lambda: time.time() + 86400) is None
        assert proc.poll() is None
    finally:
        end(proc)


def test_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f"app-{A}.lock"
        stale.write_text(f"1\n{sleeper.pid} 12345.0\n")  # right pid, wrong start time
        held = locks.acquire(tmp_path, "app", B, 600)
        assert held is not None
        assert sleeper.poll() is None
        held.release()
    finally:
        sleeper.kill()
        sleeper.wait(5)
