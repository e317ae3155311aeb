"""Lock files (docs/agent.md, Locks): `LOCK_DIR/{bin}-{sha256}.lock`.

First line: the Unix time the lock was created (as in the original design); second
line: the holder's pid, its start and the lock's creation, both in seconds since boot.
The holder keeps an flock on the file, so a killed holder frees it at once. A live
holder is ended only when its lock is older than LOCK_TIMEOUT, measured on the boot
clock (no wall-clock step can make a lock look fresh for ever, or stale too soon).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ansible_proxy.client import processes


@dataclass
class HeldLock:
    """A lock this run holds; `created` is the time written on its first line."""

    path: Path
    fd: int
    created: float

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        os.close(self.fd)


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says; None where it does not say (being written, older format)."""

    created: float | None = None  # Unix time, line 1
    pid: int | None = None
    start: float | None = None  # the holder's start, seconds since boot
    boot: float | None = None  # seconds since boot when the lock was taken

    def age(self, now: float, boot_now: float) -> float | None:
        """Seconds since the lock was taken, by the boot clock when the file has it.

        The boot clock is immune to wall-clock steps: a lock "from the future" (the clock
        stepped back) or "from long ago" (stepped forward) has its true age. Files without
        it (older agents, hand-made) fall back to the wall clock.
        """
        ages = [a for a in (self._wall_age(now), self._boot_age(boot_now)) if a is not None]
        return min(ages) if ages else None

    def _wall_age(self, now: float) -> float | None:
        if self.created is None or now < self.created:
            return None
        return now - self.created

    def _boot_age(self, boot_now: float) -> float | None:
        if self.boot is None or boot_now < self.boot:
            return None  # another boot's lock: its holder is gone, the flock says so
        return boot_now - self.boot


def lock_path(lock_dir: Path, bin_name: str, sha: str) -> Path:
    return lock_dir / f"{bin_name}-{sha}.lock"


def acquire(
    lock_dir: Path,
    bin_name: str,
    sha: str,
    timeout: float,
    clock: Callable[[], float] = time.time,
    boot_clock: Callable[[], float] = processes.boot_clock,
) -> HeldLock | None:
    """Take the lock for (bin, sha); None when a live run younger than `timeout` holds it.

    That run may hold this version's lock or another version's of the same bin: one run
    works on a bin at a time, and a live, fresh one is never ended. Stale holders (older
    than `timeout`) are ended and their locks taken over or removed. Takers of one bin's
    locks go one at a time (a short flock on LOCK_DIR/.{bin}.guard), so two runs wanting
    two versions never both back off, nor both go ahead.
    """
    with exclusive(lock_dir / f".{bin_name}.guard"):
        held = _take(lock_dir, bin_name, sha, timeout, clock, boot_clock)
        if held is None:
            return None
        if not _clear_other_versions(lock_dir, bin_name, sha, timeout, clock, boot_clock):
            held.release()
            return None
        return held


def _take(
    lock_dir: Path,
    bin_name: str,
    sha: str,
    timeout: float,
    clock: Callable[[], float],
    boot_clock: Callable[[], float],
) -> HeldLock | None:
    path = lock_path(lock_dir, bin_name, sha)
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_flock(fd) and not _take_over(fd, read_lock(path), timeout, clock, boot_clock):
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # removed by another run between our open and flock: retry
            os.close(fd)
            continue
        now = clock()
        pid, start = processes.identity()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{int(now)}\n{pid} {start!r} {boot_clock()!r}\n".encode(), 0)
        os.fsync(fd)
        return HeldLock(path, fd, float(int(now)))
    return None


def _clear_other_versions(
    lock_dir: Path,
    bin_name: str,
    keep_sha: str,
    timeout: float,
    clock: Callable[[], float],
    boot_clock: Callable[[], float],
) -> bool:
    """Remove the bin's locks for other versions; False when a live, fresh run holds one."""
    pattern = re.compile(re.escape(bin_name) + r"-([0-9a-f]{64})\.lock")
    with os.scandir(lock_dir) as entries:
        others = [e.path for e in entries if _other_version(pattern, e.name, keep_sha)]
    for path in others:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            if not _try_flock(fd) and not _take_over(
                fd, read_lock(Path(path)), timeout, clock, boot_clock
            ):
                return False
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    os.unlink(path)
        finally:
            os.close(fd)
    return True


def _other_version(pattern: re.Pattern[str], name: str, keep_sha: str) -> bool:
    match = pattern.fullmatch(name)
    return match is not None and match.group(1) != keep_sha


def _take_over(
    fd: int,
    info: LockInfo,
    timeout: float,
    clock: Callable[[], float],
    boot_clock: Callable[[], float],
) -> bool:
    """End the holder of a stale lock and take its flock; False when it is not stale."""
    age = info.age(clock(), boot_clock())
    if age is None or age < timeout:
        return False
    if info.pid is not None and info.start is not None:
        processes.end_process(info.pid, info.start)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _try_flock(fd):
            return True
        time.sleep(0.1)
    return False


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_lock(path: Path) -> LockInfo:
    """What a lock file says: line 1 the Unix time, line 2 `pid start boot`."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return LockInfo()
    created = pid = start = boot = None
    with contextlib.suppress(IndexError, ValueError):
        created = float(lines[0].strip())
        fields = lines[1].split()
        pid, start = int(fields[0]), float(fields[1])
        boot = float(fields[2])
    return LockInfo(created, pid, start, boot)


@contextlib.contextmanager
def exclusive(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold a flock on `path` (read-modify-write of the manifest, one inspector at a time).

    With `wait=False`, yields False at once instead of waiting when another holds it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if wait:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield True
        else:
            yield _try_flock(fd)
    finally:
        os.close(fd)


def held_by_other(lock_dir: Path, bin_name: str) -> bool:
    """True when a live run holds a lock of `bin_name`, for any version (the inspector)."""
    pattern = re.compile(re.escape(bin_name) + r"-[0-9a-f]{64}\.lock")
    try:
        entries = list(os.scandir(lock_dir))
    except FileNotFoundError:
        return False
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if not _try_flock(fd):
                return True
        finally:
            os.close(fd)  # also drops the flock we may just have taken
    return False
