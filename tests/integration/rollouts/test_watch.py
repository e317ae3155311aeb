"""Watch after 100 % (issue 29.3) with five real hosts: a release that passed every wave
and dies only later — a slow-burning bug — is still caught: its rollout is `watching`
(--watch 1h), the inspector's rollback on one host halts it and reverts the whole fleet."""

from __future__ import annotations

from typing import Any

from tests.integration.rollouts.conftest import MakeFleet
from tests.support.fleet_hosts import program
from tests.support.procs import wait_until


def test_a_failure_during_the_watch_after_every_wave_reverts_the_fleet(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet()
    # Supervisor does not restart a program that exits: the inspector sees it down.
    v1 = fleet.install(program("1"), autorestart=False)
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "2", "--max-failures", "1",
                     "--watch", "1h")  # fmt: skip
    # Up through every wave's bake, dead some time after: no check runs before the watch.
    v2 = fleet.server.publish("web", program("2", "die", die_after=15))

    def watching(rollout: dict[str, Any]) -> bool:
        return bool(rollout["state"] == "watching")

    rollout = fleet.converge(watching, "every wave is promoted and the rollout watched")
    assert set(fleet.shas().values()) == {v2}
    assert rollout["watch"]["seconds"] == 3600
    assert "watched after every wave for 1h" in fleet.cli("rollout", "status", "web").stdout
    assert {node: fleet.told(node) for node in fleet.hosts} == dict.fromkeys(fleet.hosts, v2)
    kinds = [event["kind"] for event in fleet.events()]
    assert "rollout-watch" in kinds
    assert "rollout-complete" not in kinds

    host = fleet[fleet.waves()[0][0]]

    def rolled_back() -> bool:
        _, answer = host.check()
        return bool(answer["services"][0]["action"] == "rolled-back")

    wait_until(rolled_back, 60, f"the inspector on {host.node} to roll back")
    rollout = fleet.wait_rollout("the watch halts and reverts", state="halted", reverted=True)
    assert rollout["reason"].startswith("during the watch after every wave: 1 of 1 nodes of")
    assert host.node in rollout["reason"]
    assert {node: fleet.told(node) for node in fleet.hosts} == dict.fromkeys(fleet.hosts, v1)
    fleet.tick()  # every host: back on v1, running
    assert fleet.shas() == dict.fromkeys(fleet.hosts, v1)
    for node in fleet.hosts:
        assert fleet[node].state() == "RUNNING", node
    assert [e["kind"] for e in fleet.events()][-2:] == ["rollout-halt", "rollout-revert"]
