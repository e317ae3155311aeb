"""The verified download of a release, for the agent and the cluster proxy alike.

`fetch_release` is the one way a host gets a release: from DOWNLOAD_BASE_URL by sha256
(immutable, so a cache may keep it), resumed up to three times, then from the API's
latest-release URL; streamed into a partial file with its sha256 computed on the way
and a size cap. A partial file keeps its ETag beside it and is resumed with `Range` +
`If-Range`. Only content hashing to the wanted sha256 is kept. A check of a signature
on downloaded artifacts belongs here, once, for both callers.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ansible_proxy.client.deadline import DeadlineExceeded, deadline
from ansible_proxy.client.files import CHUNK
from ansible_proxy.client.transport import Client, HttpError, HttpTimeout, StreamResponse
from ansible_proxy.errors import HostFault, RetryableError

# (bytes so far, total or None); Optional, not `| None`: aliases are evaluated, on 3.9 too
Progress = Callable[[int, Optional[int]], None]


class NotFound(Exception):
    """The URL answered 404: try the fallback."""


class Stalled(RetryableError):
    """Less than STALL_BYTES arrived within the stall window: not retried this tick."""


STALL_BYTES = 64 * 1024
ATTEMPTS = 3  # per tick, for a download interrupted mid-way (each resumes the last)
# What `max_bytes` is: MAX_DOWNLOAD_BYTES, or a signed statement's size when that is less
# (TUF's "length": content larger than signed is cut off, never downloaded to the end).
_CAP = "the limit (MAX_DOWNLOAD_BYTES, or the size signed)"


def release_urls(download_base_url: str, api: str, name: str, sha: str, arch: str) -> list[str]:
    """Where release `sha` of `name` is: by sha256 (cacheable), then the API's latest."""
    return [
        f"{download_base_url}/{name}?sha256={sha}&arch={arch}",
        f"{api}/releases/latest/{name}/download?arch={arch}",
    ]


def fetch_release(
    client: Client,
    urls: list[str],
    part: Path,
    expected: str,
    max_bytes: int,
    progress: Progress,
    stall: float = 60.0,
    tell: Callable[[str], None] = lambda _why: None,
    signed_size: int | None = None,
) -> None:
    """Fill `part` with the content of sha256 `expected` from the first URL that has it,
    at most `max_bytes` (MAX_DOWNLOAD_BYTES) and at most `signed_size` when a signed
    statement gives one.

    The first URL (DOWNLOAD_BASE_URL's) is tried up to ATTEMPTS times, each resuming the
    last; a stall is not retried (a slow link stays slow: the next tick resumes). The
    fallback starts afresh. `tell` hears each retry and fallback, for the log. NotFound
    when no URL has it.
    """
    if signed_size is not None:
        max_bytes = min(max_bytes, signed_size)
    for number, url in enumerate(urls):
        if number:
            tell("not found at DOWNLOAD_BASE_URL: trying the latest release")
        for attempt in range(ATTEMPTS if number == 0 else 1):
            try:
                fetch(client, url, part, expected, max_bytes, progress, number == 0, stall)
                return
            except NotFound:
                break
            except Stalled:
                raise
            except RetryableError as exc:
                if attempt == ATTEMPTS - 1 or number > 0 or not part.exists():
                    raise
                tell(f"{exc}; resuming")
    raise NotFound(urls[-1])


def fetch(
    client: Client,
    url: str,
    part: Path,
    expected: str,
    max_bytes: int,
    progress: Progress,
    resume: bool = True,
    stall: float = 60.0,
) -> None:
    """Download `url` into `part` (resuming it when possible) and check its sha256.

    On return `part` holds exactly the content with sha256 `expected`. A download that
    receives less than 64 KiB in `stall` seconds (headers included) is abandoned.
    Raises NotFound, RetryableError (interrupted or stalled: part kept) or HostFault (too
    large, not the content wanted, STORE_DIR not writable: the release was never tried).
    """
    etag_file = part.with_name(part.name + ".etag")
    digest = hashlib.sha256()
    headers: dict[str, str] = {}
    offset = part.stat().st_size if part.exists() else 0
    etag = _read(etag_file) if resume and offset else ""
    if etag:
        headers = {"Range": f"bytes={offset}-", "If-Range": etag}
    content_type = ""
    try:
        with (
            deadline(stall) as window,
            client.stream("GET", url, headers=headers, timeout=stall) as response,
        ):
            if response.status == 404:
                raise NotFound(url)
            if response.status == 416:
                _discard(part, etag_file)
                raise RetryableError(f"download {url}: server refused the resume range")
            if response.status not in (200, 206):
                raise RetryableError(f"download {url}: HTTP {response.status}")
            content_type = response.headers.get("content-type", "")
            appending = False
            if response.status == 206:
                # Only a range we asked for is appended; an unasked 206 must start at 0.
                appending = bool(headers) and _starts_at(response, offset)
                if not appending and not _starts_at(response, 0):
                    raise RetryableError(
                        f"download {url}: answered 206 Partial Content "
                        f"({response.headers.get('content-range', 'no Content-Range')}) "
                        "to a request for the whole file"
                    )
            total = _total(response, offset if appending else 0)
            if total is not None and total > max_bytes:
                raise HostFault(f"download {url}: {total} bytes exceeds {_CAP} of {max_bytes}")
            if appending:
                _hash_existing(part, digest)
            else:
                offset = 0
            new_etag = response.headers.get("etag", "")
            size = offset
            try:
                if new_etag and not appending:
                    etag_file.write_text(new_etag)
                with part.open("ab" if appending else "wb") as fh:
                    mark = size
                    # No re-chunking: copying into 1 MiB pieces costs more than it saves.
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            fh.close()
                            _discard(part, etag_file)
                            raise HostFault(f"download {url}: more than {_CAP} of {max_bytes}")
                        fh.write(chunk)
                        digest.update(chunk)
                        if size - mark >= STALL_BYTES:
                            mark = size
                            window.reset()
                        progress(size, total)
                    # No fsync: store files are re-hashed before every use (Store.has), and
                    # the copy into BIN_DIR is fsynced; a lost page costs a re-download.
            except OSError as exc:  # the store's disk: full, read-only, gone
                if isinstance(exc, (TimeoutError, socket.timeout)):  # 3.9: distinct types
                    raise
                _discard(part, etag_file)
                raise HostFault(
                    f"STORE_DIR: cannot write {part}: {exc.strerror or exc} "
                    "(partial download removed)"
                ) from None
    except (HttpTimeout, DeadlineExceeded):
        raise Stalled(
            f"download {url}: stalled: less than 64 KiB in {stall:g} s "
            "(DOWNLOAD_STALL_TIMEOUT); partial file kept for the next tick"
        ) from None
    except HttpError as exc:
        raise RetryableError(f"download {url}: interrupted: {exc} (partial kept)") from None
    actual = digest.hexdigest()
    if actual != expected:
        _discard(part, etag_file)
        raise HostFault(
            f"download {url}: sha256 mismatch: got {actual[:12]} from {size} bytes"
            + _looks_like(content_type)
            + "; discarded"
        )
    with contextlib.suppress(FileNotFoundError):
        etag_file.unlink()


def _looks_like(content_type: str) -> str:
    """A hint when the server sent a page instead of a binary (a proxy or login page)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind.startswith("text/") or kind in ("application/json", "application/xhtml+xml"):
        return f" of {kind} (an error or login page, not the binary?)"
    return f" of {kind}" if kind else ""


def _starts_at(response: StreamResponse, offset: int) -> bool:
    content_range = response.headers.get("content-range", "")
    return bool(content_range.startswith(f"bytes {offset}-"))


def _total(response: StreamResponse, offset: int) -> int | None:
    length = response.headers.get("content-length")
    if length is None or not length.isdigit():
        return None
    return offset + int(length)


def _hash_existing(part: Path, digest: hashlib._Hash) -> None:
    with part.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)


def _discard(part: Path, etag_file: Path) -> None:
    for path in (part, etag_file):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
