"""Lock files of SPEC §5 step 4.2: `LOCK_DIR/{bin}-{sha256}.lock`.

First line: the Unix time the lock was created (as in the original design); second
line: the holder's pid and start time. The holder keeps an flock on the file, so a
killed holder frees it at once; a live holder older than LOCK_TIMEOUT is ended.
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

from ansible_proxy.agent.adapters import processes


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


def lock_path(lock_dir: Path, bin_name: str, sha: str) -> Path:
    return lock_dir / f"{bin_name}-{sha}.lock"


def acquire(
    lock_dir: Path,
    bin_name: str,
    sha: str,
    timeout: float,
    clock: Callable[[], float] = time.time,
) -> HeldLock | None:
    """Take the lock for (bin, sha); None when a live, fresh run holds it."""
    path = lock_path(lock_dir, bin_name, sha)
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_flock(fd):
            created, pid, start = read_lock(path)
            if created is None or clock() - created < timeout or not _end_stale(fd, pid, start):
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
        os.pwrite(fd, f"{int(now)}\n{pid} {start!r}\n".encode(), 0)
        os.fsync(fd)
        remove_other_versions(lock_dir, bin_name, sha)
        return HeldLock(path, fd, float(int(now)))
    return None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _end_stale(fd: int, pid: int | None, start: float | None) -> bool:
    """End the holder of a stale lock and take its flock; False if it will not let go."""
    if pid is not None and start is not None:
        processes.end_process(pid, start)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _try_flock(fd):
            return True
        time.sleep(0.1)
    return False


def read_lock(path: Path) -> tuple[float | None, int | None, float | None]:
    """(created, holder pid, holder start time) from a lock file; None where unknown."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None, None, None
    created = pid = start = None
    with contextlib.suppress(IndexError, ValueError):
        created = float(lines[0].strip())
        pid_text, start_text = lines[1].split()
        pid, start = int(pid_text), float(start_text)
    return created, pid, start


def remove_other_versions(lock_dir: Path, bin_name: str, keep_sha: str) -> list[str]:
    """Remove the bin's locks for other versions, ending their live holders."""
    pattern = re.compile(re.escape(bin_name) + r"-([0-9a-f]{64})\.lock")
    removed = []
    for entry in os.scandir(lock_dir):
        match = pattern.fullmatch(entry.name)
        if match is None or match.group(1) == keep_sha:
            continue
        path = Path(entry.path)
        _, pid, start = read_lock(path)
        if pid is not None and start is not None:
            processes.end_process(pid, start)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        removed.append(match.group(1))
    return removed


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold a blocking flock on `path` (guards read-modify-write of the manifest)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
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
