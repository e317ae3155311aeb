"""What a connection may send before the app sees a request: the uvicorn adapter.

uvicorn's httptools protocol takes request lines and headers of any size (it even joins
URL pieces quadratically: a 128 MiB URL stalled every request for 19 s) and waits
forever for a request that never finishes. `LimitedHttpToolsProtocol` adds, per
connection: a cap on the URL (414) and on all header lines together (431), a deadline
for the request line and headers (from the connection's start, or the request's on a
kept-alive connection), and the longest pause allowed inside a request body. A request
past a deadline is answered 408 when nothing was answered yet, and its connection closed.
It is the only module that knows uvicorn's protocol internals; `serve` passes it as
`uvicorn.run(http=...)` with `protocol_factory(limits)`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import sys
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

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
