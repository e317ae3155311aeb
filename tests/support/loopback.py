"""The one loopback HTTP server of the tests: a real `http.server` on 127.0.0.1 (a free
port, or the one given), in a thread of the test process, answering as the test says.

`Loopback(handle)` answers every request with `handle`; `Loopback({"/path": handle})`
routes by path (the query left out) and answers 404 to any other. A handler gets the
request (`Exchange`: http.server's handler, the body read already) and writes the answer;
the makers below give the usual ones: a whole answer, a late one, Range + If-Range with
an early close, a trickle, a drip, a stall, a cut body. Every request is kept in `seen`.
HTTP/1.1 with keep-alive unless `keep_alive=False` (HTTP/1.0: one request a connection),
TLS with `tls` (a server context). `stop()` closes the port and every connection still
open (an outage); `start()` opens the same port again.

    with Loopback({"/bins": answer(200, b'{"code": 0}')}) as server:
        ... server.url ... server.seen[0].headers["Authorization"] ...
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tests.support.procs import LOOPBACK

if TYPE_CHECKING:
    import ssl

Handle = Callable[["Exchange"], None]


@dataclass(frozen=True)
class Seen:
    """One request received: the client's port (one per connection), the method, the path
    with its query, the headers (names in any case) and the body."""

    port: int
    method: str
    path: str
    headers: Message
    body: bytes


class Exchange(BaseHTTPRequestHandler):
    """One connection's requests; a handler reads `path`, `headers` and `body` and writes
    its answer with `reply()` (or `send_response()` and `wfile` for a fault)."""

    server: _Server
    body: bytes = b""
    disable_nagle_algorithm = True  # headers and body go as two writes: no 40 ms ACK wait

    def setup(self) -> None:
        loopback = self.server.loopback
        self.protocol_version = loopback.protocol
        self.connection = self.request
        self.connection.settimeout(loopback.read_timeout)  # None: an idle one waits for ever
        super().setup()

    def serve(self) -> None:
        loopback = self.server.loopback
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        loopback.keep(
            Seen(self.client_address[1], self.command, self.path, self.headers, self.body)
        )
        try:
            loopback.route(self.path)(self)
        except OSError:  # the client hung up (gave up waiting): what a fault test wants
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a test reads `seen`

    def reply(
        self, status: int, body: bytes = b"", content_type: str | None = None, **headers: str
    ) -> None:
        """A whole answer with its Content-Length; `headers` as `Content_Range="…"`."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    loopback: Loopback

    def process_request(self, request: Any, client_address: Any) -> None:
        self.loopback.opened(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.loopback.opened(request, False)
        super().shutdown_request(request)


def _not_found(req: Exchange) -> None:
    req.reply(404, b"no such route\n", "text/plain")


class Loopback:
    """A real HTTP server on 127.0.0.1 for one test (or a fixture's scope)."""

    def __init__(
        self,
        handle: Handle | Mapping[str, Handle],
        *,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        keep_alive: bool = True,
        read_timeout: float | None = None,
    ) -> None:
        self.routes: Mapping[str, Handle] = handle if isinstance(handle, Mapping) else {}
        self.handle: Handle | None = None if isinstance(handle, Mapping) else handle
        self.port = port
        self.tls = tls
        self.protocol = "HTTP/1.1" if keep_alive else "HTTP/1.0"
        self.read_timeout = read_timeout  # an idle connection's, None: for ever
        self.seen: list[Seen] = []
        self.stopping = threading.Event()  # set by stop(): late and stalled answers end
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def received(self) -> list[Seen]:
        """The requests so far, in order (a copy: handlers may be adding to it)."""
        with self._lock:
            return list(self.seen)

    @property
    def connections(self) -> int:
        """How many connections the requests so far came on."""
        return len({seen.port for seen in self.received()})

    def start(self) -> Loopback:
        server = _Server((LOOPBACK, self.port), Exchange)
        server.loopback = self
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self.stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every connection open; the handlers still running end."""
        self.stopping.set()
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            still = list(self._open)
        for sock in still:
            with contextlib.suppress(OSError):  # closed meanwhile
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> Loopback:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Called from the server's threads ---------------------------------------------

    def keep(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def route(self, path: str) -> Handle:
        if self.handle is not None:
            return self.handle
        return self.routes.get(path.split("?")[0], _not_found)

    def opened(self, sock: socket.socket, is_open: bool) -> None:
        with self._lock:
            (self._open.add if is_open else self._open.discard)(sock)


# Handlers ---------------------------------------------------------------------------


def answer(
    status: int = 200, body: bytes = b"", content_type: str | None = None, **headers: str
) -> Handle:
    """The same whole answer to every request."""

    def handle(req: Exchange) -> None:
        req.reply(status, body, content_type, **headers)

    return handle


def late(seconds: float, then: Handle) -> Handle:
    """`then`'s answer after `seconds` (a server slower than the client's timeout)."""

    def handle(req: Exchange) -> None:
        if not req.server.loopback.stopping.wait(seconds):
            then(req)

    return handle


def stall(body: bytes, sent: int = 0, content_type: str = "application/octet-stream") -> Handle:
    """Headers for all of `body` and its first `sent` bytes, then nothing until the server
    stops: a peer that went quiet mid-answer."""

    def handle(req: Exchange) -> None:
        req.send_response(200)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body[:sent])
        req.wfile.flush()
        req.server.loopback.stopping.wait()
        req.close_connection = True

    return handle


def cut(body: bytes, at: int, **headers: str) -> Handle:
    """Headers for all of `body`, then its first `at` bytes and the connection closed: a
    body cut short."""

    def handle(req: Exchange) -> None:
        req.send_response(200)
        for name, value in headers.items():
            req.send_header(name.replace("_", "-"), value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body[:at])
        req.wfile.flush()
        req.close_connection = True

    return handle


def ranged(content: bytes, etag: str, *, cut_first_at: int | None = None) -> Handle:
    """`content` with its ETag, and from `Range: bytes=N-` with `If-Range: <etag>` its
    rest (206); with `cut_first_at`, the first whole answer closes after that many bytes."""
    cuts = [cut_first_at is not None]

    def handle(req: Exchange) -> None:
        wanted = req.headers.get("Range", "")
        if wanted.startswith("bytes=") and req.headers.get("If-Range") == etag:
            start = int(wanted[len("bytes=") :].rstrip("-"))
            req.send_response(206)
            req.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
            body = content[start:]
        else:
            req.send_response(200)
            body = content
        req.send_header("ETag", etag)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if cuts[0] and len(body) == len(content) and cut_first_at is not None:
            cuts[0] = False
            req.wfile.write(body[:cut_first_at])
            req.wfile.flush()
            req.close_connection = True
            return
        req.wfile.write(body)

    return handle


def trickle(content: bytes, pieces: int, pause: float) -> Handle:
    """`content` in `pieces` parts with `pause` seconds after each (a slow link)."""

    def handle(req: Exchange) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(len(content)))
        req.end_headers()
        step = -(-len(content) // pieces)
        for start in range(0, len(content), step):
            req.wfile.write(content[start : start + step])
            req.wfile.flush()
            time.sleep(pause)

    return handle


def drip(
    body: bytes,
    piece: int = 1,
    pause: float = 2.0,
    *,
    headers_at_once: bool = False,
    content_type: str = "application/json",
) -> Handle:
    """The worst slow peer: a 200 answer, status line and headers included, `piece` bytes
    every `pause` seconds, so no single read ever waits long enough to time out.

    `headers_at_once` sends the status line and headers whole and drips only the body.
    Stops quietly once the client has hung up.
    """
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    def handle(req: Exchange) -> None:
        req.close_connection = True
        data = head + body
        if headers_at_once:
            req.wfile.write(head)
            data = body
        for start in range(0, len(data), piece):
            req.wfile.write(data[start : start + piece])
            time.sleep(pause)

    return handle


def chunked(pieces: Iterable[bytes], **headers: str) -> Handle:
    """A 200 answer in `Transfer-Encoding: chunked`, one chunk per piece."""

    def handle(req: Exchange) -> None:
        req.send_response(200)
        req.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            req.send_header(name.replace("_", "-"), value)
        req.end_headers()
        for piece in pieces:
            req.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        req.wfile.write(b"0\r\n\r\n")

    return handle
