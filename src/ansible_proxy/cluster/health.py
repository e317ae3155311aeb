"""The post-deploy health check of one host: a TCP port, or an HTTP URL answering 2xx.

Polled until it passes or the manifest's timeout runs out (a restarted service needs a
moment to listen). `{host}` in a URL is the host's `ansible_host`. The HTTP rules (2xx
only, redirects not followed, the whole call bounded, the body read only in part) are
client/http_probe.py's, the inspector's too.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from ansible_proxy.client.http_probe import DEFAULT_SECONDS, probe_http
from ansible_proxy.cluster.manifests import Health


def probe(health: Health, address: str, seconds: float = DEFAULT_SECONDS) -> bool:
    """One attempt, bounded by `seconds` as a whole."""
    if health.port is not None:
        try:
            with socket.create_connection((address, health.port), timeout=min(seconds, 1.0)):
                return True
        except OSError:
            return False
    return probe_http(health.url.replace("{host}", address), seconds).passed


def healthy(
    health: Health,
    address: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once a probe passes within `health.timeout` seconds."""
    deadline = clock() + health.timeout
    while True:
        if probe(health, address):
            return True
        if clock() >= deadline:
            return False
        sleep(0.2)
