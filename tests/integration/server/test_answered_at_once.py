"""The per-tick GETs answered as soon as their headers are parsed (server/limits/
connections.py) and downloads sent with sendfile, against a real server and raw
sockets: pipelined and mixed requests are answered in order on one connection, HTTP/1.0
is closed after its answer, every answer is logged, and a client that goes away in the
middle of a download costs nothing to the next one."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from pathlib import Path

import httpx

from tests.support.answers import node_info
from tests.support.procs import LOOPBACK
from tests.support.server import BinManager, BinManagerFactory

MIB = 1024 * 1024


def _connect(server: BinManager) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, server.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` whole answers (Content-Length bodies) read off `sock`, in order."""
    data = b""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(answers)} answers"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed inside a body"
            data += chunk
        answers.append((int(lines[0].split()[1]), headers, data[:length]))
        data = data[length:]
    return answers


def _get(path: str, version: str = "1.1", extra: str = "") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: t\r\n{extra}\r\n".encode()


def test_pipelined_ticks_and_other_requests_are_answered_in_order_on_one_connection(
    bin_manager: BinManager,
) -> None:
    sha = bin_manager.publish("app", b"app v1")
    with httpx.Client(base_url=bin_manager.api) as http:
        assert http.post("/keepalive", json=node_info("web-01")).status_code == 200
        assert http.get("/bins/app", params={"arch": "x86_64"}).status_code == 200  # cached
    poll = "/api/v1/bins/app?nodeName=web-01&arch=x86_64"
    requests = [
        _get("/api/v1/keepalive?nodeName=web-01"),
        _get(poll),
        _get("/healthz"),  # the app's own: behind the ones answered at once
        _get(poll, extra="X-Forwarded-For: 192.0.2.7\r\n"),  # the whole way, same answer
        _get("/api/v1/bins/nothing-here?arch=x86_64"),  # the route's 404
        _get("/api/v1/bins?nodeName=web-01&arch=x86_64"),
    ]
    with _connect(bin_manager) as sock:
        sock.sendall(b"".join(requests))
        answers = _answers(sock, len(requests))
        sock.sendall(_get(poll))  # still open: kept alive
        again = _answers(sock, 1)
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 200, 200, 404, 200]
    assert b'"status":"active"' in answers[0][2]
    assert sha.encode() in answers[1][2]
    assert answers[3][2] == answers[1][2] == again[0][2]
    assert answers[1][1]["cache-control"] == answers[3][1]["cache-control"] == "no-store"
    assert b'"status":"ok"' in answers[2][2]
    assert sha.encode() in answers[5][2]
    bin_manager.stop()  # the access log is complete after a graceful stop
    log = bin_manager.service.log()
    assert log.count('"path": "/api/v1/bins/app"') >= 4
    assert '"path": "/api/v1/keepalive"' in log
    assert "Traceback" not in log


def test_an_http_1_0_tick_is_answered_and_closed(bin_manager: BinManager) -> None:
    bin_manager.publish("app", b"app v1")
    with httpx.Client(base_url=bin_manager.api) as http:
        assert http.get("/bins/app", params={"arch": "x86_64"}).status_code == 200
    with _connect(bin_manager) as sock:
        sock.sendall(_get("/api/v1/bins/app?arch=x86_64", version="1.0"))
        [(status, headers, _body)] = _answers(sock, 1)
        assert (status, headers["connection"]) == (200, "close")
        assert sock.recv(1) == b""  # closed by the server


def test_a_client_that_leaves_during_a_download_costs_the_next_one_nothing(
    bin_manager_factory: BinManagerFactory, tmp_path: Path
) -> None:
    server = bin_manager_factory()
    content = hashlib.sha256(b"seed").digest() * (48 * MIB // 32)  # 48 MiB
    release = tmp_path / "big"
    release.write_bytes(content)
    sha = server.publish("big", release, timeout=120)
    path = f"/api/v1/download/big?sha256={sha}"
    for _ in range(3):
        with _connect(server) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(_get(path))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            with contextlib.suppress(OSError):  # leave with most of it unread: a reset
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        whole = http.get(path)
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).hexdigest() == sha
        ranged = http.get(path, headers={"Range": "bytes=32-63"})
        assert (ranged.status_code, ranged.content) == (206, content[32:64])
    server.stop()
    assert "Traceback" not in server.service.log()
