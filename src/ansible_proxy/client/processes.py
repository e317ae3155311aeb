"""Processes, through psutil: who we are, and ending a recorded holder safely.

A process is identified by pid plus start time, so a PID reused by an unrelated
process after the holder died is never signalled. Start times are seconds since boot
(the kernel's own count), so a step of the wall clock changes neither identity nor age.
"""

from __future__ import annotations

import os
import time

import psutil

# Start times come from clock ticks since boot (1/100 s); allow rounding.
_SAME_START = 0.05


def boot_clock() -> float:
    """Seconds since boot, suspend included; no wall-clock step moves it."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _started(proc: psutil.Process) -> float:
    """When `proc` started, in seconds since boot (psutil adds the boot time; we take it off)."""
    return proc.create_time() - psutil.boot_time()


def identity() -> tuple[int, float]:
    """This process: (pid, start time in seconds since boot)."""
    return os.getpid(), _started(psutil.Process())


def is_alive(pid: int, create_time: float) -> bool:
    """True when `pid` is running and was started at `create_time` (seconds since boot)."""
    try:
        proc = psutil.Process(pid)
        return (
            abs(_started(proc) - create_time) < _SAME_START
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
