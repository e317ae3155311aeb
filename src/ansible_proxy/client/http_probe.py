"""The HTTP health probe: one GET, judged by its status; the inspector's `http` check
(a manifest entry's `healthUrl`) and the cluster proxy's post-deploy `health: {url}`.

The rules, the same for both callers (docs/inspector.md, docs/cluster.md):
- It passes only on a 2xx status. A redirect is not followed and fails: a health
  endpoint sending its caller to a login page is not saying the service is healthy.
  Any other answer (3xx, 4xx, 5xx), a refused connection, a reset or a cut answer fails.
- The whole call, from connect to the last byte read, is bounded by `seconds`, however
  slowly the server answers: a server that stalls, or trickles its headers or its body,
  fails with "no whole answer within N s". A timer signal (client/deadline.py) would do
  this on the main thread only; the cluster proxy probes its hosts from worker threads, so
  a watchdog thread shuts the connection down instead (transport.Client.abort).
- The body is read only up to BODY_LIMIT bytes (and the rest of the one socket read that
  crosses it), so a health URL pointed at a large or endless answer passes or fails on
  its status without reading it all. The start of a failing answer's body is given in
  the detail ("HTTP 503: database unreachable").
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ansible_proxy.client.transport import Client, HttpError, HttpTimeout

DEFAULT_SECONDS = 2.0  # the whole call: a health endpoint answers at once or not at all
BODY_LIMIT = 4096  # bytes of the body read at most
DETAIL_CHARS = 120  # of a failing answer's body, in the detail
_AFTER_DEADLINE = 0.05  # how often the watchdog stops connections opened after it fired


def passes(status: int) -> bool:
    """The status rule: 2xx passes, anything else fails."""
    return 200 <= status < 300


@dataclass(frozen=True)
class ProbeAnswer:
    """`passed` by the rule above; `status` None when no whole answer came; `detail` says
    what was seen ("HTTP 200", "HTTP 503: …", "refused: …", "no whole answer within 2 s")."""

    passed: bool
    detail: str
    status: int | None = None


def probe_http(
    url: str,
    seconds: float = DEFAULT_SECONDS,
    *,
    ca_bundle: Path | None = None,
    insecure: bool = False,
) -> ProbeAnswer:
    """GET `url` once; ConfigError only when CA_BUNDLE is unusable (a setting to fix)."""
    # Its own client: the API client refuses every origin but the bin-manager's.
    with (
        Client(ca_bundle=ca_bundle, insecure=insecure, timeout=seconds, max_redirects=0) as client,
        _watchdog(client, seconds) as expired,
    ):
        try:
            with client.stream("GET", url) as answer:
                body = _read_some(answer.iter_bytes())
                status, location = answer.status, answer.headers.get("location", "")
        except (HttpError, OSError) as exc:  # OSError: a timeout while draining the rest
            if expired.is_set() or isinstance(exc, (HttpTimeout, socket.timeout)):
                return ProbeAnswer(False, f"no whole answer within {seconds:g} s")
            return ProbeAnswer(False, f"no answer: {exc}")
    if expired.is_set():  # the body read was cut short by the deadline
        return ProbeAnswer(False, f"no whole answer within {seconds:g} s", status)
    if passes(status):
        return ProbeAnswer(True, f"HTTP {status}", status)
    if location:
        return ProbeAnswer(False, f"HTTP {status} to {location} (not followed)", status)
    text = " ".join(body.decode("utf-8", "replace").split())[:DETAIL_CHARS]
    return ProbeAnswer(False, f"HTTP {status}: {text}" if text else f"HTTP {status}", status)


def _read_some(chunks: Iterator[bytes]) -> bytes:
    """The body's first BODY_LIMIT bytes, or all of it when shorter."""
    body = b""
    for chunk in chunks:
        body += chunk
        if len(body) >= BODY_LIMIT:
            break
    return body[:BODY_LIMIT]


@contextmanager
def _watchdog(client: Client, seconds: float) -> Iterator[threading.Event]:
    """An event set when `seconds` pass before the block ends; from then on the client's
    connections are shut down (again every moment, in case one was still connecting)."""
    expired, done = threading.Event(), threading.Event()

    def watch() -> None:
        if done.wait(seconds):
            return
        expired.set()
        while True:
            client.abort()
            if done.wait(_AFTER_DEADLINE):
                return

    thread = threading.Thread(target=watch, name="http-probe-deadline", daemon=True)
    thread.start()
    try:
        yield expired
    finally:
        done.set()
        thread.join()
