"""client/download.py: a release streamed into its part file, resumed with Range and
If-Range, capped in size, checked by sha256, abandoned when it stalls but not when a slow
link keeps coming, and fetched from the fallback URL when DOWNLOAD_BASE_URL has nothing.

In process (support/handler_transport.py) unless a socket matters: the last tests run the
same downloads over a real loopback server (support/loopback.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ansible_proxy.client.download import NotFound, Stalled, fetch, fetch_release, release_urls
from ansible_proxy.client.transport import Client, HttpError, Request
from ansible_proxy.errors import HostFault, RetryableError
from tests.support.handler_transport import Handler, HandlerTransport, Reply
from tests.support.loopback import Loopback, ranged, stall

CONTENT = bytes(range(256)) * 1024  # 256 KiB: four stall windows' worth (64 KiB each)
SHA = hashlib.sha256(CONTENT).hexdigest()
ETAG = '"release-1"'
CACHE, API = "http://cache.test/api/v1/download", "http://bin-manager.test/api/v1"
URLS = release_urls(CACHE, API, "app", SHA, "x86_64")
URL = URLS[0]
MAX = 1 << 20
JSON = "application/json"


class Heard:
    """What the download told: progress (bytes, total) and log lines."""

    def __init__(self) -> None:
        self.progress: list[tuple[int, int | None]] = []
        self.lines: list[str] = []

    def __call__(self, size: int, total: int | None) -> None:
        self.progress.append((size, total))


@contextmanager
def answering(handler: Handler) -> Iterator[tuple[Client, HandlerTransport]]:
    transport = HandlerTransport(handler)
    with Client([CACHE, API], transport=transport) as client:
        yield client, transport


def serve_range(content: bytes = CONTENT, etag: str = ETAG) -> Handler:
    """The whole content with its ETag; from `Range: bytes=N-` + `If-Range: <etag>` the rest."""

    def handle(request: Request) -> Reply:
        wanted = request.headers.get("Range", "")
        if wanted.startswith("bytes=") and request.headers.get("If-Range") == etag:
            start = int(wanted[len("bytes=") :].rstrip("-"))
            where = f"bytes {start}-{len(content) - 1}/{len(content)}"
            return Reply(206, content[start:], {"Content-Range": where, "ETag": etag})
        return Reply(200, content, {"ETag": etag})

    return handle


def cut_after(size: int, content: bytes = CONTENT) -> Iterator[bytes]:
    """The first `size` bytes, then the connection lost."""
    yield content[:size]
    raise HttpError("peer closed connection without sending complete message body")


def partial(tmp_path: Path, size: int, etag: str | None = ETAG) -> Path:
    """A part file holding the first `size` bytes, and its ETag beside it (when given)."""
    part = tmp_path / f".{SHA}.part"
    part.write_bytes(CONTENT[:size])
    if etag is not None:
        part.with_name(part.name + ".etag").write_text(etag)
    return part


def test_a_release_is_streamed_into_its_part_file_with_progress(tmp_path: Path) -> None:
    part, heard = tmp_path / "part", Heard()
    pieces = [CONTENT[n : n + 100_000] for n in range(0, len(CONTENT), 100_000)]
    with answering(lambda _: Reply(200, pieces, {"Content-Length": str(len(CONTENT))})) as (
        client,
        transport,
    ):
        fetch(client, URL, part, SHA, MAX, heard)
    assert part.read_bytes() == CONTENT
    total = len(CONTENT)
    assert heard.progress == [(100_000, total), (200_000, total), (total, total)]
    assert not part.with_name("part.etag").exists()
    assert "Range" not in transport.requests[0].headers
    assert transport.open == 0


def test_an_interrupted_download_is_resumed_where_it_stopped(tmp_path: Path) -> None:
    part, heard = tmp_path / f".{SHA}.part", Heard()
    answers = iter([Reply(200, cut_after(100_000), {"ETag": ETAG})])

    def handle(request: Request) -> Reply:
        return next(answers, None) or serve_range()(request)

    with answering(handle) as (client, transport):
        fetch_release(client, URLS, part, SHA, MAX, heard, tell=heard.lines.append)
    assert part.read_bytes() == CONTENT
    resumed = transport.requests[1].headers
    assert (resumed["Range"], resumed["If-Range"]) == ("bytes=100000-", ETAG)
    assert heard.lines == [f"download {URL}: interrupted: peer closed connection without "
                           "sending complete message body (partial kept); resuming"]  # fmt: skip
    assert heard.progress[-1] == (len(CONTENT), len(CONTENT))
    assert not part.with_name(part.name + ".etag").exists()


def test_an_interruption_keeps_the_part_for_the_next_tick(tmp_path: Path) -> None:
    part = tmp_path / f".{SHA}.part"
    with (
        answering(lambda _: Reply(200, cut_after(70_000), {"ETag": ETAG})) as (client, transport),
        pytest.raises(RetryableError, match=r"interrupted: .* \(partial kept\)$"),
    ):
        fetch_release(client, URLS, part, SHA, MAX, Heard())
    assert len(transport.requests) == 3  # ATTEMPTS, each resuming the last
    assert part.read_bytes() == CONTENT[:70_000]  # the last attempt's (its server ignored Range)
    assert part.with_name(part.name + ".etag").read_text() == ETAG


def test_a_server_that_ignores_the_range_starts_the_file_again(tmp_path: Path) -> None:
    part = partial(tmp_path, 50_000)
    with answering(lambda _: Reply(200, CONTENT, {"ETag": '"release-2"'})) as (client, transport):
        fetch(client, URL, part, SHA, MAX, Heard())
    assert transport.requests[0].headers["Range"] == "bytes=50000-"
    assert part.read_bytes() == CONTENT  # not appended to what was there


def test_a_part_without_its_etag_is_downloaded_afresh(tmp_path: Path) -> None:
    part = partial(tmp_path, 50_000, etag=None)
    with answering(serve_range()) as (client, transport):
        fetch(client, URL, part, SHA, MAX, Heard())
    assert "Range" not in transport.requests[0].headers
    assert part.read_bytes() == CONTENT


def test_a_refused_range_discards_the_part(tmp_path: Path) -> None:
    part = partial(tmp_path, 50_000)
    with (
        answering(lambda _: Reply(416)) as (client, _),
        pytest.raises(RetryableError, match="server refused the resume range"),
    ):
        fetch(client, URL, part, SHA, MAX, Heard())
    assert not part.exists()
    assert not part.with_name(part.name + ".etag").exists()


def test_an_unasked_206_is_taken_only_from_the_first_byte(tmp_path: Path) -> None:
    whole = {"Content-Range": f"bytes 0-{len(CONTENT) - 1}/{len(CONTENT)}"}
    with answering(lambda _: Reply(206, CONTENT, whole)) as (client, _):
        fetch(client, URL, tmp_path / "part", SHA, MAX, Heard())
    assert (tmp_path / "part").read_bytes() == CONTENT
    middle = {"Content-Range": f"bytes 10-19/{len(CONTENT)}"}
    with (
        answering(lambda _: Reply(206, CONTENT[10:20], middle)) as (client, _),
        pytest.raises(RetryableError) as refused,
    ):
        fetch(client, URL, tmp_path / "other", SHA, MAX, Heard())
    assert str(refused.value) == (
        f"download {URL}: answered 206 Partial Content (bytes 10-19/{len(CONTENT)}) "
        "to a request for the whole file"
    )


def test_a_release_larger_than_the_cap_is_never_downloaded_whole(tmp_path: Path) -> None:
    part = tmp_path / "part"
    with answering(lambda _: Reply(200, CONTENT)) as (client, _), pytest.raises(HostFault) as big:
        fetch(client, URL, part, SHA, 100_000, Heard())
    assert str(big.value) == (
        f"download {URL}: {len(CONTENT)} bytes exceeds the limit (MAX_DOWNLOAD_BYTES, or the "
        "size signed) of 100000"
    )
    assert not part.exists()
    endless = (CONTENT[n : n + 65536] for n in range(0, len(CONTENT), 65536))  # no length
    with (
        answering(lambda _: Reply(200, endless, {"ETag": ETAG})) as (client, _),
        pytest.raises(HostFault, match=r"more than the limit .* of 100000$"),
    ):
        fetch(client, URL, part, SHA, 100_000, Heard())
    assert not part.exists()
    assert not part.with_name("part.etag").exists()


def test_a_signed_size_caps_the_download_below_max_download_bytes(tmp_path: Path) -> None:
    with (
        answering(serve_range()) as (client, _),
        pytest.raises(HostFault, match=f"{len(CONTENT)} bytes exceeds the limit .* of 1000$"),
    ):
        fetch_release(client, URLS, tmp_path / "part", SHA, MAX, Heard(), signed_size=1000)
    with answering(serve_range()) as (client, _):
        fetch_release(client, URLS, tmp_path / "p", SHA, MAX, Heard(), signed_size=len(CONTENT))
    assert (tmp_path / "p").read_bytes() == CONTENT


def test_content_that_is_not_the_release_is_discarded_and_described(tmp_path: Path) -> None:
    page = b"<html><body>Please log in</body></html>"
    part = tmp_path / "part"
    login = {"Content-Type": "text/html; charset=utf-8", "ETag": ETAG}
    with (
        answering(lambda _: Reply(200, page, login)) as (client, _),
        pytest.raises(HostFault) as mismatch,
    ):
        fetch(client, URL, part, SHA, MAX, Heard())
    got = hashlib.sha256(page).hexdigest()[:12]
    assert str(mismatch.value) == (
        f"download {URL}: sha256 mismatch: got {got} from {len(page)} bytes of text/html "
        "(an error or login page, not the binary?); discarded"
    )
    assert not part.exists()
    assert not part.with_name("part.etag").exists()


def test_a_stalled_download_is_abandoned_its_part_kept_and_not_retried(tmp_path: Path) -> None:
    part = tmp_path / "part"

    def quiet() -> Iterator[bytes]:
        yield CONTENT[:1000]
        time.sleep(30)  # the stall window (0.05 s) ends this
        yield CONTENT[1000:]

    with (
        answering(lambda _: Reply(200, quiet(), {"ETag": ETAG})) as (client, transport),
        pytest.raises(Stalled) as stalled,
    ):
        fetch_release(client, URLS, part, SHA, MAX, Heard(), stall=0.05)
    assert str(stalled.value) == (
        f"download {URL}: stalled: less than 64 KiB in 0.05 s (DOWNLOAD_STALL_TIMEOUT); "
        "partial file kept for the next tick"
    )
    assert len(transport.requests) == 1  # a slow link stays slow: the next tick resumes
    assert part.read_bytes() == CONTENT[:1000]
    assert part.with_name("part.etag").read_text() == ETAG


def test_a_slow_link_that_keeps_coming_is_not_a_stall(tmp_path: Path) -> None:
    """Each 64 KiB starts the window again: four of them in more than one window's time."""

    def slow() -> Iterator[bytes]:
        for start in range(0, len(CONTENT), 32 * 1024):
            time.sleep(0.04)  # 64 KiB every 0.08 s, in a window of 0.2 s
            yield CONTENT[start : start + 32 * 1024]

    part = tmp_path / "part"
    with answering(lambda _: Reply(200, slow())) as (client, _):
        fetch(client, URL, part, SHA, MAX, Heard(), stall=0.2)
    assert part.read_bytes() == CONTENT


def test_nothing_at_download_base_url_falls_back_to_the_latest_release(tmp_path: Path) -> None:
    part, heard = partial(tmp_path, 50_000), Heard()

    def handle(request: Request) -> Reply:
        if request.url.startswith(CACHE):
            return Reply(404, b'{"code": 404, "message": "no"}', {"Content-Type": JSON})
        return serve_range()(request)

    with answering(handle) as (client, transport):
        fetch_release(client, URLS, part, SHA, MAX, heard, tell=heard.lines.append)
    assert part.read_bytes() == CONTENT
    assert [r.url for r in transport.requests] == URLS
    assert "Range" not in transport.requests[1].headers  # the fallback starts afresh
    assert heard.lines == ["not found at DOWNLOAD_BASE_URL: trying the latest release"]
    with (
        answering(lambda _: Reply(404)) as (client, transport),
        pytest.raises(NotFound, match="releases/latest/app/download"),
    ):
        fetch_release(client, URLS, tmp_path / "none", SHA, MAX, Heard())
    assert len(transport.requests) == 2


def test_a_store_that_cannot_be_written_is_the_host_s_fault(tmp_path: Path) -> None:
    part = tmp_path / "gone" / "part"  # STORE_DIR removed under the agent
    with (
        answering(lambda _: Reply(200, CONTENT)) as (client, _),
        pytest.raises(HostFault) as fault,
    ):
        fetch(client, URL, part, SHA, MAX, Heard())
    assert str(fault.value) == (
        f"STORE_DIR: cannot write {part}: No such file or directory (partial download removed)"
    )


def test_release_urls_ask_by_sha256_first_then_the_latest() -> None:
    assert [
        f"{CACHE}/app?sha256={SHA}&arch=x86_64",
        f"{API}/releases/latest/app/download?arch=x86_64",
    ] == URLS


# Over a real socket: what the connection itself does --------------------------------


def test_over_a_socket_a_cut_answer_is_resumed_and_a_quiet_one_stalls(tmp_path: Path) -> None:
    part, heard = tmp_path / "part", Heard()
    with (
        Loopback(ranged(CONTENT, ETAG, cut_first_at=100_000)) as server,
        Client([server.url]) as client,
    ):
        fetch_release(client, [server.url], part, SHA, MAX, heard, tell=heard.lines.append)
        assert part.read_bytes() == CONTENT
        ranges = [seen.headers.get("Range") for seen in server.seen]
        assert ranges[0] is None
        assert ranges[1] is not None
        assert ranges[1].startswith("bytes=")
        assert ranges[1] != "bytes=0-"
        assert [line.endswith("(partial kept); resuming") for line in heard.lines] == [True]
    part.unlink()
    with (
        Loopback(stall(CONTENT, sent=1000)) as server,
        Client([server.url]) as client,
        pytest.raises(Stalled, match=r"stalled: less than 64 KiB in 0\.2 s"),
    ):
        fetch_release(client, [server.url], part, SHA, MAX, Heard(), stall=0.2)
    assert part.read_bytes() == CONTENT[:1000]
