"""The inspector's rollback of a version deaf to SIGTERM (supervisord kills it after
stopwaitsecs, answering stopProcess only then) must leave the previous version running.

It failed while stopProcess was one call bounded by SUPERVISOR_TIMEOUT.
"""

from __future__ import annotations

import sys

from tests.integration.inspector.conftest import Host, breakable
from tests.support.procs import free_port
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def _deaf(host: Host, tag: str, port: int) -> bytes:
    """Listens on `port` until its close flag; ignores SIGTERM."""
    close = str(host.flags / f"{tag}.close")
    return f"""#!{sys.executable}
# inspector test program deaf to SIGTERM, version {tag}
import os, signal, socket, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port!r}))
s.listen()
while True:
    if s is not None and os.path.exists({close!r}):
        s.close()
        s = None
    time.sleep(0.1)
""".encode()


def test_rollback_of_a_version_deaf_to_sigterm_leaves_the_previous_running(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.env["CHECK_FAILURES"] = "1"
    port = free_port()
    sha1, _ = host.install(
        bin_manager,
        supervisord,
        "hello",
        breakable(host, "1", port),
        _deaf(host, "2", port),
        port=port,
    )
    host.flag("2", "close")
    code, answer = host.check(SUPERVISOR_TIMEOUT="2")
    assert (code, host.service(answer, "hello")["action"]) == (1, "rolled-back"), answer
    assert host.installed_sha("hello") == sha1
    supervisord.wait_running("hello")
