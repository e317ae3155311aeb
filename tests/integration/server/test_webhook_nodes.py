"""A receiver's secret URL never reaches the log file of a real `bin-manager serve` (one
process, and two workers at debug level): httpx and httpcore, which would log it, are
kept quiet (issue 25, item 7). The deliveries themselves: tests/routes/test_webhook_nodes.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.integration.server.test_webhooks import Receiver
from tests.routes.test_webhook_nodes import bodies, enrolled, report_failed
from tests.support.procs import free_port, wait_until
from tests.support.server import BinManager, BinManagerFactory


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port()).start()
    yield server
    server.stop()


def hooked(factory: BinManagerFactory, url: str, *args: str) -> tuple[BinManager, str]:
    """A server (node credentials required) posting to `url`, with bin `web` published."""
    server = factory(
        node_auth="required",
        extra_args=list(args),
        extra_env={"BIN_MANAGER_WEBHOOK_URLS": url, "NO_PROXY": "127.0.0.1"},
    )
    return server, server.publish("web", b"\x7fELF web v1")


@pytest.mark.parametrize(
    "flags", [(), ("--log-level", "debug", "--workers", "2")], ids=["info", "debug-workers"]
)
def test_a_receivers_secret_url_never_reaches_the_server_log(
    bin_manager_factory: BinManagerFactory, receiver: Receiver, flags: tuple[str, ...]
) -> None:
    secret = "T0001/B0002/" + secrets.token_hex(12)  # a Slack-style URL's token
    server, sha = hooked(bin_manager_factory, receiver.url(f"/services/{secret}"), *flags)
    with server.client(base_url=server.api) as http:
        headers = enrolled(server, http, "web-01")
        report_failed(http, headers, "web-01", sha, "watch: web exited")
        wait_until(lambda: len(bodies(receiver)) == 1, 30, "the node-rollback delivery")
    server.stop()  # every line the delivery caused is written by now
    assert {request.path for request in receiver.received()} == {f"/services/{secret}"}
    log = server.service.log()
    assert "node 'web-01' enrolled" in log  # the log holds what the server wrote
    assert secret not in log
    assert secret.split("/")[-1] not in log
