"""A supervisord that answers stopProcess slowly, by design (a service draining for up to
stopwaitsecs, or deaf to SIGTERM and killed then), is not a hung one.

Both tests failed while stopProcess was one call bounded by SUPERVISOR_TIMEOUT.
"""

from __future__ import annotations

import sys

from tests.support.agent import Agent, program
from tests.support.procs import free_port
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def _slow_to_stop(tag: str, drain: float) -> bytes:
    """Runs until SIGTERM, then takes `drain` s to exit (the fixture's stopwaitsecs is 3)."""
    return f"""#!{sys.executable}
# test program, version {tag}
import signal, sys, time
def stop(signum, frame):
    time.sleep({drain!r})
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(3600)
""".encode()


def test_upgrade_of_a_service_slower_to_stop_than_supervisor_timeout(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    bin_manager.publish("app", _slow_to_stop("1", drain=2.5))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0
    supervisord.wait_running("app")
    sha2 = bin_manager.publish("app", program("2"))
    result = agent.run(SUPERVISOR_TIMEOUT="2")  # 2.5 s to stop: slow, not hung
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha2
    assert supervisord.state("app") == "RUNNING"


def test_bad_version_deaf_to_sigterm_is_rolled_back_and_marked_err(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    port = free_port()
    sha1 = bin_manager.publish("app", program("1", port=port))
    agent.write_manifest("app", ports={"app": port})
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0
    sha2 = bin_manager.publish("app", _slow_to_stop("2", drain=3600))  # never opens `port`
    result = agent.run(SUPERVISOR_TIMEOUT="2")
    assert result.returncode == 1, agent.debug(result)
    assert agent.entry("app")["history"][sha2] == "err"
    assert agent.installed_sha("app") == sha1
    supervisord.wait_running("app")
