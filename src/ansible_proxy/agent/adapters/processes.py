"""Processes, through psutil: who we are, and ending a recorded holder safely.

A process is identified by pid plus start time, so a PID reused by an unrelated
process after the holder died is never signalled.
"""

from __future__ import annotations

import os

import psutil

# create_time() is a float derived from boot time and clock ticks; allow rounding.
_SAME_START = 0.05


def identity() -> tuple[int, float]:
    """This process: (pid, start time)."""
    return os.getpid(), psutil.Process().create_time()


def is_alive(pid: int, create_time: float) -> bool:
    """True when `pid` is running and was started at `create_time`."""
    try:
        proc = psutil.Process(pid)
        return (
            abs(proc.create_time() - create_time) < _SAME_START
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def end_process(pid: int, create_time: float, grace: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL, the process `pid` started at `create_time`; True if ended."""
    if pid == os.getpid() or not is_alive(pid, create_time):
        return False
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        try:
            proc.wait(grace)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    except psutil.NoSuchProcess:
        pass
    except psutil.Error:
        return False
    return True


def running_named(names: tuple[str, ...]) -> int | None:
    """The pid of a live process whose name or executable's base name is in `names`."""
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            argv = proc.info["cmdline"] or []
            bases = {os.path.basename(arg) for arg in argv[:2]}  # argv[1]: a script's path
            if proc.info["name"] in names or bases & set(names):
                return int(proc.pid)
        except psutil.Error:
            continue
    return None
