"""A bin-manager of the original design, written for the tests from its API section alone
(seed/ansible-proxy-README.zh.md, SPEC.md §4): none of this project's server code.

Standard library only: the tests' loopback server (support/loopback.py) on 127.0.0.1 in a
thread, HTTP/1.1 with keep-alive.
It serves the original endpoints and nothing else — no enrolment, no batch `GET /bins`,
no signatures, no Range unless asked — in the original envelope (a POST's answer has no
`data`), checks each body as a typed server would (the original fields present and
typed; other fields ignored), and answers every other route as the web stack it plays
would (`Unknown`), body and all. `token` makes it ask `Authorization: Bearer` on every
route, before routing, as the design's "API authentication" advice would. It records
what it received, so a test can assert on it, and lets the test publish releases,
corrupt a bin's downloads and hold a download half-way.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import Exchange, Loopback


@dataclass(frozen=True)
class Unknown:
    """How the server answers a route (or a method) it does not have."""

    status: int
    content_type: str
    body: bytes


UNKNOWN_ROUTES = {
    "404-html": Unknown(
        404,
        "text/html",
        b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
        b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
        b"</body>\r\n</html>\r\n",
    ),
    "405-plain": Unknown(405, "text/plain; charset=utf-8", b"Method Not Allowed\n"),
    "501": Unknown(501, "text/plain; charset=utf-8", b"Not Implemented\n"),
}

_BIN = r"([A-Za-z0-9._-]+)"
_STATUSES = ("in_progress", "success", "failed")
READ_TIMEOUT = 60.0  # an idle keep-alive connection, or a held download, ends after this


@dataclass
class Download:
    """One download answered: the path asked, its Range header, the status sent."""

    path: str
    range: str
    status: int


@dataclass
class Records:
    """What the server received, in order (bodies as sent, extra fields included)."""

    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # POST /keepalive
    keepalives: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)  # POST /bins/{bin}
    progress: list[dict[str, Any]] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)


class OriginalServer:
    """The server, its releases and what it received; start with `serve_original()`."""

    def __init__(
        self,
        unknown: Unknown = UNKNOWN_ROUTES["404-html"],
        *,
        token: str = "",
        ranges: bool = False,
    ) -> None:
        self.unknown = unknown
        self.token = token
        self.ranges = ranges  # Range + If-Range on downloads (the design does not ask it)
        self.lock = threading.Lock()
        self.releases: dict[str, list[bytes]] = {}  # bin → contents, the latest last
        self.corrupted: set[str] = set()
        self.seen = Records()
        self.hold_at: int | None = None  # the next download stops after this many bytes
        self.held = threading.Event()  # ... set once it has sent them
        self.let_go = threading.Event()  # ... and goes on once this is set
        self.loopback = Loopback(self._serve, read_timeout=READ_TIMEOUT)

    @property
    def url(self) -> str:
        return self.loopback.url

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    # What a test does ---------------------------------------------------------------

    def publish(self, name: str, content: bytes) -> str:
        """Make `content` the latest release of `name`; its sha256."""
        with self.lock:
            self.releases.setdefault(name, []).append(content)
        return hashlib.sha256(content).hexdigest()

    def corrupt(self, name: str, on: bool = True) -> None:
        """Serve `name`'s downloads with one byte changed (a bad disk, a broken cache)."""
        with self.lock:
            (self.corrupted.add if on else self.corrupted.discard)(name)

    def hold_next_download(self, after: int) -> None:
        """The next download sends `after` bytes, then waits for `let_go` (or the timeout)."""
        self.held.clear()
        self.let_go.clear()
        self.hold_at = after

    def progress(self) -> list[tuple[str, str]]:
        """(targetHash, status) of each progress report, oldest first."""
        with self.lock:
            return [(p["targetHash"], p["status"]) for p in self.seen.progress]

    def reported(self) -> list[tuple[str, str]]:
        """(binName, sha256) of each POST /bins/{bin}, oldest first."""
        with self.lock:
            return [(r["binName"], r["sha256"]) for r in self.seen.reports]

    def downloads(self, sha: str | None = None) -> list[Download]:
        """The downloads answered (of release `sha` only, when given)."""
        with self.lock:
            return [d for d in self.seen.downloads if sha is None or f"sha256={sha}" in d.path]

    def asked(self, method: str, path: str) -> int:
        """How many requests came for `method` `path` (the path without its query)."""
        with self.lock:
            return self.seen.requests.count((method, path))

    # The server -----------------------------------------------------------------------

    def _latest(self, name: str) -> bytes | None:
        with self.lock:
            versions = self.releases.get(name)
            return versions[-1] if versions else None

    def _by_sha(self, name: str, sha: str) -> bytes | None:
        with self.lock:
            return next(
                (c for c in self.releases.get(name, []) if hashlib.sha256(c).hexdigest() == sha),
                None,
            )

    def _serve(self, req: Exchange) -> None:
        """One request: routed, or answered as the web stack it plays."""
        parts = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.seen.requests.append((req.command, parts.path))
        if self.token and req.headers.get("Authorization") != f"Bearer {self.token}":
            req.reply(401, b"401 Unauthorized\n", "text/plain")
            return
        for method, pattern, handle in ROUTES:
            found = re.fullmatch(pattern, parts.path)
            if found and method == req.command:
                handle(req, self, query, req.body, *found.groups())
                return
        unknown = self.unknown
        req.reply(unknown.status, unknown.body, unknown.content_type)


# The routes: each takes (request, server, query, body, *path groups) -----------------


def _envelope(req: Exchange, status: int = 200, data: Any = None, message: str = "success") -> None:
    body: dict[str, Any] = {"code": 0 if status == 200 else status, "message": message}
    if data is not None:
        body["data"] = data
    req.reply(status, json.dumps(body).encode(), "application/json")


def _body(req: Exchange, raw: bytes, fields: Mapping[str, type]) -> dict[str, Any] | None:
    """The JSON object with `fields` of those types (others ignored); else a 400 is sent."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        _envelope(req, 400, message="request body is not a JSON object")
        return None
    for name, kind in fields.items():
        value = body.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            _envelope(req, 400, message=f"{name}: missing or not a {kind.__name__}")
            return None
    return body


def _keepalive_get(
    req: Exchange, server: OriginalServer, query: dict[str, str], _raw: bytes
) -> None:
    name = query.get("nodeName", "")
    with server.lock:
        known = name in server.seen.nodes
    if not known:
        _envelope(req, 404, message=f"node {name} not found")
        return
    _envelope(req, data={"nodeName": name, "status": "active"})


def _keepalive_post(
    req: Exchange, server: OriginalServer, _query: dict[str, str], raw: bytes
) -> None:
    fields = {"cpuArch": str, "osRelease": str, "nodeName": str, "binProxyVersion": str}
    body = _body(req, raw, fields)
    if body is None:
        return
    with server.lock:
        server.seen.keepalives.append(body)
        server.seen.nodes[body["nodeName"]] = body
    _envelope(req)


def _bin_get(
    req: Exchange, server: OriginalServer, _query: dict[str, str], _raw: bytes, name: str
) -> None:
    content = server._latest(name)
    if content is None:
        _envelope(req, 404, message=f"bin {name} not found")
        return
    _envelope(req, data={"sha256": hashlib.sha256(content).hexdigest(), "version": "latest"})


def _bin_post(
    req: Exchange, server: OriginalServer, _query: dict[str, str], raw: bytes, _name: str
) -> None:
    fields = {"nodeName": str, "binName": str, "sha256": str, "version": str}
    body = _body(req, raw, fields)
    if body is None:
        return
    with server.lock:
        server.seen.reports.append(body)
    _envelope(req)


def _progress_post(
    req: Exchange, server: OriginalServer, _query: dict[str, str], raw: bytes, _name: str
) -> None:
    fields = {
        "nodeName": str, "binName": str, "targetHash": str, "processingTime": int, "status": str
    }  # fmt: skip
    body = _body(req, raw, fields)
    if body is None:
        return
    if body["status"] not in _STATUSES:
        _envelope(req, 400, message=f"status must be one of {', '.join(_STATUSES)}")
        return
    with server.lock:
        server.seen.progress.append(body)
    _envelope(req)


def _download(req: Exchange, server: OriginalServer, query: dict[str, str], name: str) -> None:
    wanted = query.get("sha256")
    content = server._by_sha(name, wanted) if wanted else server._latest(name)
    if content is None:
        _envelope(req, 404, message=f"bin {name} has no such release")
        return
    etag = f'"{hashlib.sha256(content).hexdigest()}"'
    with server.lock:
        if name in server.corrupted:
            content = content[:-1] + bytes([content[-1] ^ 0x01])
    asked = req.headers.get("Range", "")
    start, status = 0, 200
    if server.ranges and asked.startswith("bytes=") and req.headers.get("If-Range") == etag:
        start, status = int(asked[len("bytes=") :].split("-")[0]), 206
    with server.lock:
        server.seen.downloads.append(Download(req.path, asked, status))
    req.send_response(status)
    req.send_header("Content-Type", "application/octet-stream")
    req.send_header("Content-Length", str(len(content) - start))
    if server.ranges:
        req.send_header("ETag", etag)
        req.send_header("Accept-Ranges", "bytes")
    if status == 206:
        req.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
    req.end_headers()
    body, hold = content[start:], server.hold_at
    try:
        if hold is not None:
            server.hold_at = None
            req.wfile.write(body[:hold])
            req.wfile.flush()
            server.held.set()
            server.let_go.wait(READ_TIMEOUT)
            body = body[hold:]
        req.wfile.write(body)
    except OSError:  # the agent is gone (killed mid-download): what the test wanted
        req.close_connection = True


def _download_get(
    req: Exchange, server: OriginalServer, query: dict[str, str], _raw: bytes, name: str
) -> None:
    _download(req, server, query, name)


def _latest_download(
    req: Exchange, server: OriginalServer, _query: dict[str, str], _raw: bytes, name: str
) -> None:
    _download(req, server, {}, name)


def _latest_sha256(
    req: Exchange, server: OriginalServer, _query: dict[str, str], _raw: bytes, name: str
) -> None:
    content = server._latest(name)
    if content is None:
        _envelope(req, 404, message=f"bin {name} not found")
        return
    sha = hashlib.sha256(content).hexdigest()
    req.reply(200, f"{sha}\n".encode(), "text/plain")


ROUTES: list[tuple[str, str, Callable[..., None]]] = [
    ("GET", "/api/v1/keepalive", _keepalive_get),
    ("POST", "/api/v1/keepalive", _keepalive_post),
    ("GET", f"/api/v1/bins/{_BIN}", _bin_get),
    ("POST", f"/api/v1/bins/{_BIN}", _bin_post),
    ("POST", f"/api/v1/bins/{_BIN}/progress", _progress_post),
    ("GET", f"/api/v1/download/{_BIN}", _download_get),
    ("GET", f"/api/v1/releases/latest/{_BIN}/download", _latest_download),
    ("GET", f"/api/v1/releases/latest/{_BIN}/sha256", _latest_sha256),
]


@contextmanager
def serve_original(
    unknown: Unknown = UNKNOWN_ROUTES["404-html"], *, token: str = "", ranges: bool = False
) -> Iterator[OriginalServer]:
    """An original-design server on 127.0.0.1 for the `with` block; shut down after."""
    server = OriginalServer(unknown, token=token, ranges=ranges)
    server.loopback.start()
    try:
        yield server
    finally:
        server.let_go.set()  # a held download goes on (or finds its agent gone)
        server.loopback.stop()
