"""First install, upgrade, rollback and the watch window, against real services."""

from __future__ import annotations

from tests.support.agent import Agent, program
from tests.support.procs import free_port, port_open
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def test_first_install_then_upgrade(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    v1, v2 = program("1"), program("2")
    sha1 = bin_manager.publish("hello", v1)
    agent.write_manifest("hello")
    supervisord.add_program("hello", agent.binary("hello"))

    first = agent.run()
    assert first.returncode == 0, agent.debug(first)
    assert agent.installed_sha("hello") == sha1
    pid1 = supervisord.wait_running("hello")
    entry = agent.entry("hello")
    assert entry["version"] == sha1
    assert entry["history"] == {sha1: "ok"}
    assert agent.manifest()["nodeInfo"]["nodeName"] == "host-001"
    assert (agent.store_dir / "hello" / sha1).read_bytes() == v1

    agent.binary("hello").chmod(0o750)  # the operator's mode survives upgrades
    sha2 = bin_manager.publish("hello", v2)
    second = agent.run()
    assert second.returncode == 0, agent.debug(second)
    assert agent.installed_sha("hello") == sha2
    assert agent.binary("hello").stat().st_mode & 0o777 == 0o750
    assert supervisord.wait_running("hello") != pid1
    entry = agent.entry("hello")
    assert (entry["version"], entry["previousVersion"]) == (sha2, sha1)
    assert entry["history"] == {sha1: "ok", sha2: "ok"}
    assert entry["upgradePath"][sha2] == sha1
    node = bin_manager.admin_get("/nodes/host-001")
    assert node.status_code == 200, node.text
    detail = node.json()["data"]
    assert [(b["binName"], b["sha256"]) for b in detail["bins"]] == [("hello", sha2)]
    progress = [(p["targetHash"], p["status"]) for p in reversed(detail["progress"])]
    assert progress == [
        (sha1, "in_progress"), (sha1, "success"), (sha2, "in_progress"), (sha2, "success")
    ]  # fmt: skip
    assert all(p["processingTime"] >= 0 for p in detail["progress"])
    assert agent.leftovers() == []

    again = agent.run()
    assert again.returncode == 0, agent.debug(again)
    assert supervisord.pid("hello") == supervisord.wait_running("hello")


def test_version_exiting_at_once_is_rolled_back(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    port = free_port()
    sha1 = bin_manager.publish("web", program("1", port=port))
    agent.write_manifest("web", ports={"web": port})
    supervisord.add_program("web", agent.binary("web"))
    assert agent.run().returncode == 0
    supervisord.wait_running("web")

    bad = bin_manager.publish("web", program("2", mode="exit", port=port))
    result = agent.run()
    assert result.returncode == 1, agent.debug(result)
    assert agent.installed_sha("web") == sha1
    supervisord.wait_running("web")
    assert port_open(port)
    entry = agent.entry("web")
    assert entry["version"] == sha1
    assert entry["history"][bad] == "err"
    detail = bin_manager.admin_get("/nodes/host-001").json()["data"]
    assert (detail["progress"][0]["targetHash"], detail["progress"][0]["status"]) == (bad, "failed")
    assert [b["sha256"] for b in detail["bins"]] == [sha1]

    # Known bad: not retried, logged once, exit 0.
    for _ in range(2):
        rerun = agent.run()
        assert rerun.returncode == 0, agent.debug(rerun)
    assert agent.log().count("known bad") == 1
    assert agent.installed_sha("web") == sha1


def test_version_dying_after_start_is_caught_by_the_watch(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha1 = bin_manager.publish("svc", program("1"))
    agent.write_manifest("svc")
    supervisord.add_program("svc", agent.binary("svc"))
    assert agent.run().returncode == 0
    bad = bin_manager.publish("svc", program("2", mode="die", die_after=2.0))
    result = agent.run(WATCH_SECONDS="4")
    assert result.returncode == 1, agent.debug(result)
    assert agent.installed_sha("svc") == sha1
    supervisord.wait_running("svc")
    assert agent.entry("svc")["history"][bad] == "err"
    assert "did not stay up" in agent.log()
