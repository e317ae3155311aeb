"""The cluster proxy's post-deploy HTTP health check: client/http_probe.py's rules, in the
worker threads the proxy probes its hosts from."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from ansible_proxy.cluster.health import healthy
from ansible_proxy.cluster.manifests import Health
from tests.support.loopback import Exchange, Loopback, answer


def check(url: str) -> bool:
    """One attempt of `healthy` for one host (its clock reads 2 s later each time, past the
    1 s timeout at once), from a worker thread as cluster/deploy.py makes it."""
    ticks: Iterator[int] = iter(range(0, 100, 2))
    health = Health(url=url, timeout=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(
            healthy, health, "127.0.0.1", clock=lambda: next(ticks), sleep=lambda _: None
        ).result()


def test_a_redirect_is_not_healthy() -> None:
    """It used to pass (any status below 400): a health URL sent to a login page."""
    with Loopback({"/healthz": answer(302, Location="/login"), "/login": answer(200)}) as server:
        assert not check(f"http://{{host}}:{server.port}/healthz")
        assert [seen.path for seen in server.received()] == ["/healthz"]


class Endless:
    """200, then a body a byte every 20 ms for 10 s (no length): counts what it sent."""

    TOTAL = 500

    def __init__(self) -> None:
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, req: Exchange) -> None:
        req.close_connection = True
        try:
            req.send_response(200)
            req.send_header("Connection", "close")
            req.end_headers()
            req.wfile.flush()
            while self.sent < self.TOTAL and not req.server.loopback.stopping.wait(0.02):
                req.wfile.write(b"x")
                self.sent += 1
        finally:
            self.done.set()


def test_an_answer_that_never_ends_fails_within_the_probe_deadline() -> None:
    """It used to be read to its end, however long, and then passed on its 200."""
    endless = Endless()
    with Loopback(endless) as server:
        assert not check(f"http://{{host}}:{server.port}/events")
        assert endless.done.wait(30)
    assert endless.sent < Endless.TOTAL
