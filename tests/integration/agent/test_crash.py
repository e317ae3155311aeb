"""kill -9 at every step of an upgrade, and overlapping runs: the host always converges."""

from __future__ import annotations

import pytest

from tests.support.agent import Agent, program
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


@pytest.mark.parametrize(
    "point", ["after-download", "after-replace", "after-restart", "before-manifest"]
)
def test_killed_agent_converges_on_next_run(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, point: str
) -> None:
    sha1 = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0
    sha2 = bin_manager.publish("app", program("2"))

    crashed = agent.run(ANSIBLE_PROXY_TEST_CRASH_AT=point)
    assert crashed.returncode == -9, agent.debug(crashed)
    assert agent.installed_sha("app") in (sha1, sha2)  # whole, one or the other
    assert agent.leftovers() == []

    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha2
    entry = agent.entry("app")
    assert (entry["version"], entry["previousVersion"]) == (sha2, sha1)
    assert entry["history"] == {sha1: "ok", sha2: "ok"}
    assert entry["upgradePath"][sha2] == sha1
    supervisord.wait_running("app")
    assert agent.leftovers() == []


def test_overlapping_runs_swap_once(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0
    sha2 = bin_manager.publish("app", program("2"))

    runs = [agent.spawn(), agent.spawn()]
    codes = [run.wait(120) for run in runs]
    for run in runs:
        assert run.stdout is not None
        assert run.stderr is not None
        run.stdout.close()
        run.stderr.close()
    assert codes == [0, 0], agent.log()
    assert agent.log().count("upgraded and healthy") == 2  # v1 earlier, v2 once
    assert agent.log().count("upgrading from") == 2
    assert agent.installed_sha("app") == sha2
    assert agent.entry("app")["version"] == sha2
