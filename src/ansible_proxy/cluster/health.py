"""The post-deploy health check of one host: a TCP port, or an HTTP URL answering < 400.

Polled until it passes or the manifest's timeout runs out (a restarted service needs a
moment to listen). `{host}` in a URL is the host's `ansible_host`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from ansible_proxy.client.transport import Client, HttpError
from ansible_proxy.cluster.manifests import Health


def probe(health: Health, address: str) -> bool:
    """One attempt."""
    if health.port is not None:
        try:
            with socket.create_connection((address, health.port), timeout=1.0):
                return True
        except OSError:
            return False
    url = health.url.replace("{host}", address)
    try:
        # Its own client: the API client refuses any host but the bin-manager's.
        with Client(timeout=2.0, max_redirects=0) as client:
            return client.request("GET", url).status < 400
    except HttpError:
        return False


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
