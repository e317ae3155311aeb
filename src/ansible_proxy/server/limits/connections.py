"""What a connection may send before the app sees a request: the uvicorn adapter.

uvicorn's httptools protocol takes request lines and headers of any size (it even joins
URL pieces quadratically: a 128 MiB URL stalled every request for 19 s) and waits
forever for a request that never finishes. `LimitedHttpToolsProtocol` adds, per
connection: a cap on the URL (414) and on all header lines together (431), a deadline
for the request line and headers (from the connection's start, or the request's on a
kept-alive connection), and the longest pause allowed inside a request body. A request
past a deadline is answered 408 when nothing was answered yet, and its connection closed.
It also answers the agents' per-tick GETs that the app's fast path (hotpath/fastpath.py)
can answer from memory right when their headers are parsed, without an ASGI request, task
or send (half of such a request's CPU was uvicorn's per-request machinery); sends each
other answer's head with its first body bytes in one system call (uvicorn writes them
apart: two sends per poll, a fifth of its CPU); and offers plain-HTTP apps
the ASGI `http.response.pathsend` extension, which Starlette's FileResponse (the
artifact downloads) then uses: the file goes to the socket with sendfile(2), never
through user space. It is the only module that knows uvicorn's protocol internals;
`serve` passes it as `uvicorn.run(http=...)` with `protocol_factory(limits)`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits (settings.py: max_url_bytes, max_header_bytes, the timeouts)."""

    max_url_bytes: int
    max_header_bytes: int
    header_timeout: float
    body_timeout: float


class _Refused(Exception):
    """Raised from a parser callback: the request is answered `status` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
_INTERIM = b"HTTP/1.1 1"  # 100 Continue: the client waits for it before it sends the body
# A GET with any of these goes the whole way: a body to read, an upgrade, a 100 Continue
# to send, or a client address that uvicorn's proxy-headers middleware would rewrite.
_NOT_AT_ONCE = frozenset(
    {b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"x-forwarded-for"}
)


class _HeadWithBody:
    """One answer's view of the transport: its head (status line and headers, uvicorn's
    first write) waits for the first body bytes, and both go out in one writev(2). The
    head goes alone when the answer completes without a body (HEAD, 304) or closes."""

    __slots__ = ("_head", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self.transport.writelines((head, data))
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(_INTERIM):
            self._head = data
        else:
            self.transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def take_head(self) -> bytes:
        head, self._head = self._head or b"", None
        return head


def _flushed_first(corked: _HeadWithBody, done: Callable[[], None]) -> Callable[[], None]:
    def on_response() -> None:
        corked.flush()
        done()

    return on_response


PATHSEND = "http.response.pathsend"
_SENDFILE_BYTES = 4 * 1024 * 1024  # at most per sendfile(2): the socket takes less anyway

Send = Callable[[Any], Awaitable[None]]


def _with_pathsend(cycle: RequestResponseCycle, corked: _HeadWithBody, send: Send) -> Send:
    """uvicorn's send for `cycle`, taking `http.response.pathsend` too (zero-copy)."""

    async def send_or_sendfile(message: Any) -> None:
        if message["type"] != PATHSEND:
            await send(message)
            return
        if cycle.chunked_encoding:  # no Content-Length to send: the file through `send`
            await _send_chunks(message["path"], send)
            return
        if not await _sendfile(cycle, corked, message["path"]):
            cycle.disconnected = True
            corked.transport.close()
            return
        cycle.expected_content_length = 0  # sent: uvicorn completes the answer
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return send_or_sendfile


async def _sendfile(cycle: RequestResponseCycle, corked: _HeadWithBody, path: str) -> bool:
    """The held head, then the file's Content-Length bytes, written straight to the
    socket once uvicorn's own buffer is empty; False when the client went away."""
    transport = corked.transport
    loop = asyncio.get_running_loop()
    while transport.get_write_buffer_size() and not transport.is_closing():
        await asyncio.sleep(0.001)  # an earlier answer's bytes go first
    if transport.is_closing():
        return False
    sock = os.dup(transport.get_extra_info("socket").fileno())  # ours to wait on
    try:
        head = corked.take_head()
        while head:
            try:
                head = head[os.write(sock, head) :]
            except BlockingIOError:
                await _writable(loop, sock)
        with open(path, "rb") as file:
            offset, left = 0, cycle.expected_content_length
            # Read ahead now, so that a file not in the page cache blocks at most the first
            # sendfile below (as nginx's sendfile does without aio).
            os.posix_fadvise(file.fileno(), 0, left, os.POSIX_FADV_WILLNEED)
            while left:
                try:
                    sent = os.sendfile(sock, file.fileno(), offset, min(left, _SENDFILE_BYTES))
                except BlockingIOError:
                    await _writable(loop, sock)
                    continue
                if sent == 0:
                    log.warning("%s ended %d bytes short of its Content-Length", path, left)
                    return False
                offset, left = offset + sent, left - sent
    except OSError:  # reset, broken pipe: the client went away
        return False
    finally:
        os.close(sock)
    return True


async def _send_chunks(path: str, send: Send) -> None:
    with open(path, "rb") as file:
        while chunk := await anyio.to_thread.run_sync(file.read, 1024 * 1024):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def on_writable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, on_writable)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with URL and header caps and read deadlines."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._head_bytes = 0
        self._in_head = True  # reading a request line and headers (or waiting for one)
        self._body_seen = 0.0  # loop time of the last body bytes
        self._read_timer: asyncio.TimerHandle | None = None
        self._refusal: _Refused | None = None
        self._front = _front_of(self.app)  # the app's fast path, when it has one
        self._answered = False  # the current request was answered at once

    # -- the deadline: one timer per request, armed at its start, cancelled when read --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, delay: float) -> None:
        self._read_timer = self.loop.call_later(delay, self._on_read_deadline)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _on_read_deadline(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle  # the request being answered, or (in a head) the one before
        if self._in_head:
            if cycle is not None and not cycle.response_complete:
                self._arm(self.limits.header_timeout)  # a pipelined request waits its turn
                return
        else:
            # Inside a body: only a client that stopped sending is cut off, not one the
            # app is slow to read from (flow control paused the reading).
            idle = self.loop.time() - self._body_seen
            if self.flow.read_paused or idle < self.limits.body_timeout:
                self._arm(max(0.05, self.limits.body_timeout - idle))
                return
            if cycle is not None and cycle.response_started:
                self.transport.close()  # answered already: nothing more to say
                return
        self._answer(_Refused(408, "the request was not sent in time"))

    # -- parser callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._unset_keepalive_if_required()  # a request in the same read as an answer's
        self._in_head = True
        self._head_bytes = 0
        if self._read_timer is None:  # a kept-alive connection's next request
            self._arm(self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if len(self.url) + len(url) > self.limits.max_url_bytes:
            raise _Refused(414, f"the URL is longer than {self.limits.max_url_bytes} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_bytes > self.limits.max_header_bytes:
            raise _Refused(
                431, f"the request headers are larger than {self.limits.max_header_bytes} bytes"
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._body_seen = self.loop.time()
        if self._front is not None and self._answer_at_once():
            return
        before = self.cycle
        zero_copy = self.scheme == "http"  # never past TLS: sendfile would skip it
        if zero_copy:
            self.scope.setdefault("extensions", {})[PATHSEND] = {}
        super().on_headers_complete()
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and cycle is not before:  # a new request (not an upgrade)
            corked = _HeadWithBody(self.transport)
            cycle.transport = corked  # type: ignore[assignment]
            cycle.on_response = _flushed_first(corked, cycle.on_response)
            if zero_copy:
                cycle.send = _with_pathsend(cycle, corked, cycle.send)  # type: ignore[method-assign,assignment]

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        if self._answered:  # nothing waits for this request's end
            self._answered = False
            return
        super().on_message_complete()

    # -- the per-tick GETs, answered at once ------------------------------------------
    def _answer_at_once(self) -> bool:
        """Answer an ordinary GET the fast path knows from memory, now; False: the app's."""
        parser = self.parser
        if parser.get_method() != b"GET" or self.root_path:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind an answer still being made: it waits its turn
        if any(name in _NOT_AT_ONCE for name, _ in self.headers):
            return False
        url = httptools.parse_url(self.url)
        if b"%" in url.path or not url.path.isascii():
            return False  # uvicorn unquotes or refuses it
        started = time.perf_counter()
        scope = {
            "type": "http",
            "method": "GET",
            "path": url.path.decode("ascii"),
            "query_string": url.query or b"",
            "headers": self.headers,
            "client": self.client,
        }
        answer = self._front.answer_now(scope)
        if answer is None:
            return False
        route, status, headers, body = answer
        keep_alive = parser.get_http_version() == "1.1" and parser.should_keep_alive()
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            head += (name, b": ", value, b"\r\n")
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"\r\n", body)
        self.transport.write(b"".join(head))
        self._answered = True
        self.server_state.total_requests += 1
        self._front.record(scope, route, status, started)
        if not keep_alive:
            self.transport.close()
        else:  # as uvicorn after an answer: the connection may idle this long
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        return True

    # -- refusals ------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        try:
            super().data_received(data)
        finally:
            if self._refusal is not None and not self.transport.is_closing():
                self._answer(self._refusal)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error: ours when a callback refused the request."""
        refusal = _refusal_in_context()
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refusal = refusal  # answered by data_received, after the parser returns

    def _answer(self, refusal: _Refused) -> None:
        """The `{code, message}` envelope with `refusal`'s status, then close."""
        self._refusal = None
        body = json.dumps({"code": refusal.status, "message": refusal.message}).encode()
        head = [
            b"HTTP/1.1 %d %s\r\n" % (refusal.status, _REASONS.get(refusal.status, b"")),
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        log.warning("refused a request: %s", refusal.message)
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _refusal_in_context() -> _Refused | None:
    """The _Refused a parser callback raised, while uvicorn handles the parser's error."""
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, _Refused):
            return exc
        exc = exc.__context__
    return None


def _front_of(app: Any) -> Any:
    """The fast path in front of the app uvicorn runs (through uvicorn's own wrappers:
    proxy headers, message logger), or None."""
    for _ in range(5):
        front = getattr(app, "front", None)
        if front is not None and hasattr(front, "answer_now"):
            return front
        app = getattr(app, "app", None)
    return None


def protocol_factory(limits: ConnectionLimits) -> Any:
    """What `uvicorn.run(http=...)` takes: picklable, for `serve --workers N` too."""
    return functools.partial(LimitedHttpToolsProtocol, limits=limits)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the new soft limit.

    Logs a warning when even the hard limit leaves fewer than `wanted` descriptors.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d: %s", soft, exc)
    if soft < wanted:
        log.warning(
            "the open-files limit is %d, below the %d that max_connections needs: raise "
            "the hard limit (LimitNOFILE= in the systemd unit) or lower "
            "BIN_MANAGER_MAX_CONNECTIONS",
            soft,
            wanted,
        )
    return soft
