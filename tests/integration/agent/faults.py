"""Faulty HTTP servers on 127.0.0.1: the faults themselves, not stand-ins for the bin-manager.

Each runs `http.server` in a thread; `FaultServer.requests` records what the agent sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.procs import LOOPBACK

Handler = Callable[[BaseHTTPRequestHandler], None]


class FaultServer:
    def __init__(self, handler: Handler) -> None:
        self.requests: list[dict[str, str]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append({"path": self.path, **dict(self.headers.items())})
                handler(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"


@contextmanager
def fault_server(handler: Handler) -> Iterator[FaultServer]:
    server = FaultServer(handler)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)


def answer(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handle


def slow(seconds: float) -> Handler:
    def handle(req: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        answer(200, b'{"code":0,"message":"success","data":{}}')(req)

    return handle


def cut_once(content: bytes, cut_at: int, etag: str) -> Handler:
    """Serve `content` with Range/If-Range; the first full answer stops at `cut_at` bytes."""
    cuts = [True]

    def handle(req: BaseHTTPRequestHandler) -> None:
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
        if cuts[0] and len(body) == len(content):
            cuts[0] = False
            req.wfile.write(body[:cut_at])
            req.wfile.flush()
            req.close_connection = True
            return
        req.wfile.write(body)

    return handle


def trickle(content: bytes, pieces: int, pause: float) -> Handler:
    """Serve `content` in `pieces` parts with `pause` seconds between them (a slow link)."""

    def handle(req: BaseHTTPRequestHandler) -> None:
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
) -> Handler:
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

    def handle(req: BaseHTTPRequestHandler) -> None:
        req.close_connection = True
        data = head + body
        try:
            if headers_at_once:
                req.wfile.write(head)
                data = body
            for start in range(0, len(data), piece):
                req.wfile.write(data[start : start + piece])
                time.sleep(pause)
        except OSError:  # the client gave up waiting: what the test wants of it
            return

    return handle
