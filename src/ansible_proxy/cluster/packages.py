"""Safe extraction of deployment packages (tar.gz) into `releases/<service>/<sha256>/`.

Every member is pre-validated before a byte is written: no absolute path, no `..`, no
link leaving the tree (symlinks resolved through the archive's other symlinks, as
realpath would), no device or fifo, no setuid/setgid bit, caps on entries and total size.
Before tarfile parses a header, two more caps hold: the decompressed stream stops at
`max_bytes` plus header room (a gzip bomb is not inflated past it), and a GNU long-name
or PAX header bigger than `max_header_bytes` is refused before its data is read.
Only then is it extracted with tarfile's `data` filter into a temp dir beside the target
and renamed into place. This machine's Python 3.11.7 predates the tarfile filter fixes
of 3.11.13 (CVE-2025-4517 and friends: realpath overflow and link tricks that slip past
the `data` filter), so the pre-validation, not the filter, is what makes this safe.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from ansible_proxy.client.files import fsync_dir
from ansible_proxy.errors import DeployError, HostFault

PLAYBOOK = "deploy.yml"
_MAX_LINK_HOPS = 40  # as the kernel's MAXSYMLINKS
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class UnsafePackage(DeployError):
    """The archive has a member that could write outside its tree, or is too big."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one package may unpack to."""

    max_entries: int = 10_000
    max_bytes: int = 1024**3
    max_header_bytes: int = 1024**2  # one GNU long name or PAX header's data

    @property
    def max_stream_bytes(self) -> int:
        """The decompressed tar stream: contents, a 512-byte header (and its padding) per
        entry, headers' data, and the end-of-archive blocks."""
        return self.max_bytes + self.max_entries * 2048 + 4 * self.max_header_bytes + 10240


def extract_release(archive: Path, releases: Path, service: str, sha: str, limits: Limits) -> Path:
    """Unpack `archive` to `releases/<service>/<sha>/` (kept if already there); its path.

    Raises UnsafePackage (nothing written) or DeployError (not a tar.gz, no deploy.yml).
    """
    target = releases / service / sha
    if (target / PLAYBOOK).is_file():
        return target  # a rerun: the release is already unpacked, whole (renamed in)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            gzip.open(archive) as raw,
            tarfile.open(
                fileobj=cast(IO[bytes], _Capped(raw, limits.max_stream_bytes)),
                mode="r:",
                tarinfo=_header_capped(limits.max_header_bytes),
            ) as tar,
        ):
            members = validate(tar, limits)
            if PLAYBOOK not in {_normal(m.name) for m in members if m.isfile()}:
                raise DeployError(f"package {archive.name}: no {PLAYBOOK} at its top level")
            staging = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}.", dir=target.parent))
            try:
                tar.extractall(staging, members=members, filter="data")
                fsync_dir(staging)
                os.rename(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except OSError as exc:
        if exc.errno in _DISK_FULL:  # this host's disk, not the package
            raise HostFault(f"package {archive.name}: cannot unpack: {exc.strerror}") from None
        raise DeployError(f"package {archive.name}: not a readable tar.gz: {exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise DeployError(f"package {archive.name}: not a readable tar.gz: {exc}") from None
    fsync_dir(target.parent)
    return target


def validate(tar: tarfile.TarFile, limits: Limits) -> list[tarfile.TarInfo]:
    """Every member of `tar`, each checked; raises UnsafePackage at the first bad one."""
    members: list[tarfile.TarInfo] = []
    total = 0
    seen: dict[str, tarfile.TarInfo] = {}
    for member in tar:  # streaming: a 100,000-entry bomb stops at the cap, not the end
        if len(members) >= limits.max_entries:
            raise UnsafePackage(f"more than {limits.max_entries} entries")
        total += max(member.size, 0)
        if total > limits.max_bytes:
            raise UnsafePackage(f"unpacks to more than {limits.max_bytes} bytes")
        name = _checked_name(member.name, "member")
        _check_kind(member)
        if name in seen and not (member.isdir() and seen[name].isdir()):
            raise UnsafePackage(f"{member.name!r}: appears twice")
        seen[name] = member
        members.append(member)
    links = {n: m.linkname for n, m in seen.items() if m.issym()}
    for name, member in seen.items():
        if _through_symlink(name, links):
            raise UnsafePackage(f"{member.name!r}: written through a symlink")
        if member.issym():
            _resolve(name, links)
        elif member.islnk():
            target = _checked_name(member.linkname, f"hardlink {member.name!r} to")
            if target not in seen or not seen[target].isfile():
                raise UnsafePackage(f"{member.name!r}: hardlink to {member.linkname!r} outside")
    return members


class _Capped:
    """A seekable read-only stream that refuses to go past `cap` bytes (never reads more)."""

    def __init__(self, inner: gzip.GzipFile, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    def _check(self) -> None:
        if self._inner.tell() > self._cap:
            raise UnsafePackage(f"unpacks to more than {self._cap} bytes of tar stream")

    def read(self, size: int = -1) -> bytes:
        room = self._cap - self._inner.tell() + 1  # one byte past the cap shows the excess
        data = self._inner.read(room if size < 0 else min(size, room))
        self._check()
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == os.SEEK_CUR:
            offset, whence = self._inner.tell() + offset, os.SEEK_SET
        if whence != os.SEEK_SET:
            raise OSError("only absolute or relative seeks")
        position = self._inner.seek(min(offset, self._cap + 1))
        self._check()
        return position

    def tell(self) -> int:
        return self._inner.tell()


def _header_capped(limit: int) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses a long-name or PAX header with more than `limit` bytes of
    data, and GNU sparse files, before tarfile reads any of it."""

    class CappedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tar: tarfile.TarFile) -> Any:
            if self.type in _HEADER_TYPES and self.size > limit:
                raise UnsafePackage(
                    f"{self.name!r}: a {self.size}-byte extended header (more than {limit} bytes)"
                )
            if self.type == _SPARSE:
                raise UnsafePackage(f"{self.name!r}: GNU sparse file")
            return super()._proc_member(tar)  # type: ignore[misc]

    return CappedTarInfo


_HEADER_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_SPARSE = tarfile.GNUTYPE_SPARSE


def _checked_name(raw: str, what: str) -> str:
    if not raw or "\x00" in raw or raw.startswith("/") or "\\" in raw:
        raise UnsafePackage(f"{what} {raw!r}: absolute or malformed path")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if ".." in parts:
        raise UnsafePackage(f"{what} {raw!r}: path with '..'")
    if not parts:
        return "."
    return "/".join(parts)


def _normal(raw: str) -> str:
    return "/".join(p for p in PurePosixPath(raw).parts if p != ".")


def _check_kind(member: tarfile.TarInfo) -> None:
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafePackage(f"{member.name!r}: device, fifo or other special file")
    if member.mode & (stat.S_ISUID | stat.S_ISGID):
        raise UnsafePackage(f"{member.name!r}: setuid or setgid bit")


def _through_symlink(name: str, links: dict[str, str]) -> bool:
    parts = name.split("/")
    return any("/".join(parts[:i]) in links for i in range(1, len(parts)))


def _resolve(name: str, links: dict[str, str]) -> None:
    """Follow the symlink `name` through the archive's symlinks; refuse an escape."""
    target = links[name]
    if target.startswith("/") or "\x00" in target:
        raise UnsafePackage(f"{name!r}: symlink to an absolute path {target!r}")
    pending = [*name.split("/")[:-1], *target.split("/")]
    pending.reverse()
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise UnsafePackage(f"{name!r}: symlink {target!r} leaves the package")
            resolved.pop()
            continue
        here = "/".join([*resolved, part])
        if here in links:
            hops += 1
            if hops > _MAX_LINK_HOPS or links[here].startswith("/"):
                raise UnsafePackage(f"{name!r}: symlink loop or absolute link at {here!r}")
            pending.extend(reversed(links[here].split("/")))
            continue
        resolved.append(part)
