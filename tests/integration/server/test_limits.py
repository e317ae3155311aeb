"""Limits before work, against a real `bin-manager serve` and real hostile clients: bodies,
URLs and headers over their limits, half-sent and idle connections, too many of them."""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.answers import envelope, node_info
from tests.support.procs import LOOPBACK, wait_until
from tests.support.server import BinManager, BinManagerFactory

MIB = 1024 * 1024
SHORT = {"BIN_MANAGER_HEADER_TIMEOUT_SECONDS": "1", "BIN_MANAGER_BODY_TIMEOUT_SECONDS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BinManager]:
    """One server for the module, with one-second head and body deadlines."""
    manager = BinManager(tmp_path_factory.mktemp("limits"), extra_env=SHORT)
    try:
        yield manager.start()
    finally:
        manager.stop()


def connect(server: BinManager) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, server.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, headers and JSON body of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


def read_response(sock: socket.socket) -> bytes:
    """One whole response: its head, then Content-Length bytes (TCP may split them)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(": ")
        if name.lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def send_until_closed(sock: socket.socket, total: int, chunk: bytes) -> int:
    """Send up to `total` bytes of `chunk`s; how many went out before the server closed."""
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    return sent


def rss(server: BinManager) -> int:
    return int(psutil.Process(server.pid).memory_info().rss)


def test_a_declared_300_mib_body_is_refused_before_it_is_read(server: BinManager) -> None:
    before = rss(server)
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/keepalive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (300 * MIB)
        )
        status, headers, body = answer(read_response(sock))  # before a byte of the body
        assert status == 413
        assert body["code"] == 413
        assert "larger than the limit of 65536" in str(body["message"])
        assert headers["connection"] == "close"
        sent = send_until_closed(sock, 300 * MIB, b"x" * MIB)
    assert sent < 300 * MIB  # the server closed the connection instead of reading on
    assert rss(server) - before < 20 * MIB
    envelope(httpx.get(f"{server.url}/healthz"), 200)


def test_a_chunked_300_mib_body_is_cut_off_at_the_limit(server: BinManager) -> None:
    before = rss(server)
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/keepalive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"100000\r\n" + b"x" * MIB + b"\r\n"  # 1 MiB chunks, no length declared
        sent = send_until_closed(sock, 300 * MIB, piece)
        reply = read_all(sock)
    assert sent < 300 * MIB
    if reply:  # the 413 arrives unless the reset of the unread rest overtook it
        assert answer(reply)[0] == 413
    assert rss(server) - before < 20 * MIB


def test_bodies_are_limited_per_route(server: BinManager) -> None:
    big_json = node_info("limits-node") | {"padding": "x" * 70_000}
    with server.client(base_url=server.api) as http:
        refused = envelope(http.post("/keepalive", json=big_json), 413)
        assert "request body" in refused["message"]
        envelope(http.post("/keepalive", json=node_info("limits-node")), 200)
    # An upload keeps its own, larger limit.
    server.publish("limits-upload", b"u" * (200 * 1024))


def test_a_long_url_gets_414_and_a_128_mib_one_is_cut_off(server: BinManager) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz?" + b"a" * 16 * 1024)  # the request line never ends
        status, headers, body = answer(read_all(sock))
    assert (status, body["code"]) == (414, 414)
    assert "longer than 8192 bytes" in str(body["message"])
    assert headers["connection"] == "close"
    with connect(server) as sock:
        sock.sendall(b"GET /healthz?")
        assert send_until_closed(sock, 128 * MIB, b"a" * MIB) < 128 * MIB
    envelope(httpx.get(f"{server.url}/healthz"), 200)


def test_large_headers_get_431(server: BinManager) -> None:
    headers = {f"x-filler-{i}": "v" * 1000 for i in range(40)}  # 40 KiB
    response = httpx.get(f"{server.url}/healthz", headers=headers)
    assert "32768" in envelope(response, 431)["message"]
    envelope(httpx.get(f"{server.url}/healthz", headers=dict(list(headers.items())[:8])), 200)


def test_a_half_sent_head_gets_408_and_is_closed(server: BinManager) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        status, _, body = answer(read_all(sock))
    assert (status, body["code"]) == (408, 408)


def test_an_idle_connection_is_closed(server: BinManager) -> None:
    with connect(server) as sock:
        reply = read_all(sock)  # returns only once the server closes
    assert reply == b"" or answer(reply)[0] == 408


def test_a_stalled_body_is_closed(server: BinManager) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/keepalive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"cpuArch"'
        )
        reply = read_all(sock)
    assert reply == b"" or answer(reply)[0] in (400, 408)


def test_a_slow_but_steady_body_is_not_cut_off(server: BinManager) -> None:
    body = json.dumps(node_info("steady-node")).encode()
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/keepalive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        for start in range(0, len(body), len(body) // 4 + 1):  # longer in all than 1 s
            time.sleep(0.4)
            sock.sendall(body[start : start + len(body) // 4 + 1])
        status, _, answered = answer(read_all(sock))
    assert (status, answered["code"]) == (200, 0)


def _raise_own_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or soft < hard < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))


def test_1100_half_sent_requests_neither_block_others_nor_stay(server: BinManager) -> None:
    _raise_own_fd_limit()
    socks = [connect(server) for _ in range(1100)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        envelope(httpx.get(f"{server.url}/healthz", timeout=30), 200)
        open_ = set(socks)
        selector = selectors.DefaultSelector()
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)

        def all_closed() -> bool:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    data = b""
                if not data:
                    selector.unregister(sock)
                    open_.discard(sock)
            return not open_

        wait_until(all_closed, 60, "the server to close 1,100 half-sent requests")
    finally:
        for sock in socks:
            sock.close()


def test_the_open_files_limit_is_raised_to_the_hard_limit(server: BinManager) -> None:
    soft, hard = (
        int(value) if value.isdigit() else -1
        for value in Path(f"/proc/{server.pid}/limits")
        .read_text()
        .split("Max open files")[1]
        .split()[:2]
    )
    assert soft == hard


def test_connections_over_the_limit_get_503(bin_manager_factory: BinManagerFactory) -> None:
    server = bin_manager_factory(extra_args=["--max-connections", "8"])
    socks = [connect(server) for _ in range(10)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert httpx.get(f"{server.url}/healthz").status_code == 503
    finally:
        for sock in socks:
            sock.close()
    wait_until(
        lambda: httpx.get(f"{server.url}/healthz").status_code == 200, 30, "room for a request"
    )
