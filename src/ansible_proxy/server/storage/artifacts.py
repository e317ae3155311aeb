"""Content-addressed artifact store: `artifacts/<sha[:2]>/<sha>`, written atomically.

Owns the files under the data directory's `artifacts/`. An upload goes to `artifacts/tmp/`,
is hashed while streaming, fsynced and renamed into place; only then may a release row
point at it. Files are served only through a committed release row, so a temp file or
an orphan left by a crash is never served; temp files are removed on start.

Deleting a release removes its file once no row points at that content. `adding()` (a
shared lock, held by a publish from "the file is in place" until its row is committed)
and `removing()` (an exclusive one) keep a publish of the same content from losing its
file to a concurrent delete; flock works between the processes of `--workers` and, on
NFS, between replicas.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BufferedWriter
from pathlib import Path

import anyio.to_thread

from ansible_proxy.protocol import is_sha256
from ansible_proxy.server.problems import TooLarge

LOCK_NAME = ".lock"  # artifacts/.lock: never a digest, so never served or removed


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int


class ArtifactStore:
    """Files named by their sha256 under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"

    def prepare(self) -> int:
        """Create the directories and remove temp files left by a crash; return how many."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        removed = 0
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def path_for(self, sha256: str) -> Path:
        if not is_sha256(sha256):  # never build a path from anything but a digest
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    @contextmanager
    def adding(self) -> Iterator[None]:
        """Hold while a new release row comes to point at a stored file (until its commit)."""
        with self._locked(fcntl.LOCK_SH):
            yield

    @contextmanager
    def removing(self) -> Iterator[None]:
        """Hold while deciding whether a file is still needed and removing it."""
        with self._locked(fcntl.LOCK_EX):
            yield

    def remove(self, sha256: str) -> bool:
        """Remove the file of `sha256` (call inside `removing()`); False when it was absent."""
        target = self.path_for(sha256)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(target.parent)
        return True

    @contextmanager
    def _locked(self, operation: int) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def receive(self, chunks: AsyncIterator[bytes], limit: int) -> StoredArtifact:
        """Stream `chunks` to a temp file, hash it, and move it into place atomically."""
        tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        done = False
        try:
            with tmp.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"upload is larger than the limit of {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                await anyio.to_thread.run_sync(_flush_and_sync, out)
            sha256 = digest.hexdigest()
            await anyio.to_thread.run_sync(self._move_into_place, tmp, sha256)
            done = True
            return StoredArtifact(sha256=sha256, size=size)
        finally:
            if not done:
                tmp.unlink(missing_ok=True)

    def _move_into_place(self, tmp: Path, sha256: str) -> None:
        target = self.path_for(sha256)
        if target.is_file() and target.stat().st_size == tmp.stat().st_size:
            tmp.unlink()  # same content already stored (content-addressed)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _fsync_dir(target.parent)


def _flush_and_sync(out: BufferedWriter) -> None:
    out.flush()
    os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
