"""Crash-safe file primitives: atomic writes and replaces, fsync, hashing.

Owns every rename the agent does: a crash leaves the old file or the new one, whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ansible_proxy.errors import DeployError

CHUNK = 1024 * 1024


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` through a temp file beside it: fsync, rename, fsync the dir.

    A symlink is written through, never replaced: the temp file goes in the directory of
    the link's final target and is renamed over that target, so the link stays a link
    (a manifest kept in a config-management checkout). A dangling link raises OSError.
    """
    target = _final_target(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with _renamed_over(target, tmp):
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            tmp.chmod(mode)
        elif target.exists():
            _copy_owner_and_mode(target, tmp)


@contextlib.contextmanager
def _renamed_over(target: Path, tmp: Path) -> Iterator[None]:
    """The block fills `tmp`; then it is renamed over `target` and the directory fsynced.

    Any error (or a signal's exception) removes `tmp`: a crash leaves the old file or the
    new one, whole, and no temp file behind.
    """
    try:
        yield
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def _final_target(path: Path) -> Path:
    """`path` itself, or for a symlink the file it finally points at (which must exist)."""
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))  # Python 3.9 has no strict=: stat says what is wrong
    try:
        real.stat()  # a dangling link: ENOENT; a loop: ELOOP
        return real
    except OSError as exc:
        link = os.readlink(path)
        raise OSError(exc.errno, f"symlink to {link}: {exc.strerror}", str(path)) from None


def replace_with_copy(
    source: Path, target: Path, default_mode: int = 0o755, expected_sha: str = ""
) -> None:
    """Replace `target` with a copy of `source`, keeping target's mode and owner.

    Copy to a temp file beside the target (hashing it when `expected_sha` is given), fsync,
    rename over it (works over a running executable, where writing in place fails with
    ETXTBSY), fsync the directory.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.new")
    digest = hashlib.sha256()
    with _renamed_over(target, tmp):
        with source.open("rb") as src, tmp.open("wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)
                digest.update(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if expected_sha and digest.hexdigest() != expected_sha:
            raise DeployError(f"{source} no longer hashes to {expected_sha[:12]}: not installed")
        if target.exists():
            _copy_owner_and_mode(target, tmp)
        else:
            tmp.chmod(default_mode)


def _copy_owner_and_mode(reference: Path, path: Path) -> None:
    st = reference.stat()
    path.chmod(st.st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)


def sha256_file(path: Path) -> str | None:
    """The sha256 of `path`, or None when it does not exist."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()
