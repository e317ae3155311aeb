"""client/http_probe.py against a real loopback server: which statuses pass, the whole
call's deadline (on the main thread and in a worker thread, as the cluster proxy probes),
and a body read only in part."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_proxy.client.http_probe import BODY_LIMIT, DETAIL_CHARS, probe_http
from tests.support.loopback import Exchange, Handle, Loopback, answer, stall
from tests.support.procs import LOOPBACK, free_port, wait_until

SECONDS = 0.5  # the probe's whole-call deadline in these tests


@pytest.mark.parametrize(
    ("handle", "passed", "detail"),
    [
        (answer(200, b"fine"), True, "HTTP 200"),
        (answer(204), True, "HTTP 204"),
        (answer(302, Location="/login"), False, "HTTP 302 to /login (not followed)"),
        (
            answer(301, Location="https://elsewhere/"),
            False,
            "HTTP 301 to https://elsewhere/ (not followed)",
        ),
        (answer(404, b"no such page"), False, "HTTP 404: no such page"),
        (answer(503, b"database\n  unreachable\n"), False, "HTTP 503: database unreachable"),
        (answer(500), False, "HTTP 500"),
    ],
)
def test_only_a_2xx_passes_and_a_redirect_is_not_followed(
    handle: Handle, passed: bool, detail: str
) -> None:
    with Loopback({"/healthz": handle, "/login": answer(200)}) as server:
        result = probe_http(f"{server.url}/healthz", SECONDS)
        assert (result.passed, result.detail) == (passed, detail)
        assert [seen.path for seen in server.received()] == ["/healthz"]


def test_nothing_listening_fails_and_says_so() -> None:
    result = probe_http(f"http://{LOOPBACK}:{free_port()}/healthz", SECONDS)
    assert not result.passed
    assert result.status is None
    assert result.detail.startswith("no answer: ")


class Drip:
    """A 200 answer a byte every 20 ms (10 s in all), its status line and headers too
    unless `headers_at_once`: no single read waits long enough to time out. Counts what
    it sent before the client hung up."""

    BODY = b"x" * 500

    def __init__(self, headers_at_once: bool) -> None:
        head = (  # Connection: close: the answer takes the socket from its connection
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(self.BODY)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.first, self.dripped = (head, self.BODY) if headers_at_once else (b"", head + self.BODY)
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, req: Exchange) -> None:
        req.close_connection = True
        try:
            req.wfile.write(self.first)
            for start in range(len(self.dripped)):
                if req.server.loopback.stopping.wait(0.02):
                    return
                req.wfile.write(self.dripped[start : start + 1])
                self.sent += 1
        finally:
            self.done.set()


@pytest.mark.parametrize("thread", ["main", "worker"])
@pytest.mark.parametrize("headers_at_once", [False, True], ids=["headers", "body"])
def test_a_dripping_server_is_left_at_the_deadline(thread: str, headers_at_once: bool) -> None:
    """Every read gets a byte before its own timeout: only a deadline on the whole call
    ends it, on the main thread and in a worker thread (the cluster proxy's) alike."""
    drip = Drip(headers_at_once)
    with Loopback(drip) as server:
        if thread == "main":
            result = probe_http(server.url, SECONDS)
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                result = pool.submit(probe_http, server.url, SECONDS).result()
        wait_until(drip.done.is_set, 30, "the server to see the client hang up")
    assert (result.passed, result.detail) == (False, "no whole answer within 0.5 s")
    assert drip.sent < len(drip.dripped)  # the probe hung up: it did not wait for it all


def test_a_server_that_answers_nothing_is_left_at_the_deadline() -> None:
    with Loopback(stall(b"ok", 0)) as server:
        result = probe_http(server.url, SECONDS)
    assert (result.passed, result.detail) == (False, "no whole answer within 0.5 s")


class Endless:
    """A 200 whose body goes on (64 MiB, no length): how much of it was sent before the
    client hung up."""

    TOTAL = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, req: Exchange) -> None:
        req.close_connection = True
        try:
            req.send_response(200)
            req.send_header("Connection", "close")
            req.end_headers()
            block = b"y" * 65536
            while self.sent < self.TOTAL:
                req.wfile.write(block)
                self.sent += len(block)
        finally:
            self.done.set()


def test_a_large_body_is_not_read_to_its_end() -> None:
    endless = Endless()
    with Loopback(endless) as server:
        result = probe_http(f"{server.url}/metrics", SECONDS)
        wait_until(endless.done.is_set, 30, "the server to stop sending")
    assert (result.passed, result.detail) == (True, "HTTP 200")
    assert endless.sent < Endless.TOTAL  # the probe hung up rather than read it all


def test_a_failing_answers_body_is_cut_short_in_the_detail() -> None:
    with Loopback(answer(503, b"e" * (BODY_LIMIT * 4))) as server:
        result = probe_http(server.url, SECONDS)
    assert not result.passed
    assert result.detail == "HTTP 503: " + "e" * DETAIL_CHARS
