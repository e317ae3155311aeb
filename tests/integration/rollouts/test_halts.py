"""A bad release is tried by the canary only: its failure halts the rollout and reverts the
fleet to the previous release, which is then refused until an operator re-enables it."""

from __future__ import annotations

import httpx

from tests.integration.rollouts.conftest import MakeFleet
from tests.support.fleet_hosts import ARCH, Fleet, Watcher, program
from tests.support.procs import wait_until

STAGED = ("--canary", "1", "--waves", "50%,100%", "--max-failures", "1")


def assert_reverted(fleet: Fleet, canary: str, v1: str, v2: str) -> dict[str, object]:
    """The rollout is halted and reverted at the canary, which is named failed."""
    rollout = fleet.wait_rollout("the rollout halts and reverts", state="halted", reverted=True)
    assert fleet.status()["state"] == "halted"
    assert (rollout["release"], rollout["previous"], rollout["wave"]) == (v2, v1, 0)
    canary_wave = rollout["waves"][0]
    assert (canary_wave["failures"], canary_wave["failureLimit"]) == (1, 1)
    assert [(node["name"], node["state"]) for node in canary_wave["nodes"]] == [(canary, "failed")]
    assert "canary" in rollout["reason"]
    assert canary in rollout["reason"]
    later = [node["state"] for wave in rollout["waves"][1:] for node in wave["nodes"]]
    assert set(later) == {"waiting"}
    assert {node: fleet.told(node) for node in fleet.hosts} == dict.fromkeys(fleet.hosts, v1)
    return rollout


def test_a_release_exiting_at_start_is_tried_by_the_canary_only(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    pids = fleet.pids()
    fleet.set_policy(*STAGED, "--bake", "5")

    bad = program("2", "exit")
    with Watcher(fleet).running() as watcher:
        v2 = fleet.server.publish("web", bad)
        canary = fleet.waves()[0][0]
        others = [node for node in fleet.hosts if node != canary]
        first = fleet.tick(expect=(0, 1))
        assert first[canary].returncode == 1, fleet[canary].debug(first[canary])
        assert_reverted(fleet, canary, v1, v2)
        for _ in range(2):  # every host a few more times: nothing changes anywhere now
            fleet.tick()
    for node in others:
        assert watcher.told_ever(node) == {v1}

    assert fleet.shas() == dict.fromkeys(fleet.hosts, v1)
    assert fleet[canary].history() == {v1: "ok", v2: "err"}
    assert fleet[canary].state() == "RUNNING"
    assert fleet[canary].pid() != pids[canary]  # restarted into v2, then back into v1
    for node in others:
        host = fleet[node]
        assert host.history() == {v1: "ok"}, node
        assert v2[:12] not in host.log(), node
        assert host.pid() == pids[node], f"{node} was restarted"
        assert host.downloads() == 1, node  # v1 only

    kinds = [event["kind"] for event in fleet.events()]
    assert kinds[1:] == ["rollout-start", "rollout-node-failed", "rollout-halt", "rollout-revert"]
    metrics = fleet.metrics()
    assert f'bin_manager_rollout_halted{{arch="{ARCH}",bin="web"}} 2.0' in metrics

    # The reverted release is refused until an operator resumes or pins it.
    with fleet.server.client() as http:
        again = http.post(
            f"{fleet.server.api}/admin/bins/web/releases",
            params={"arch": ARCH},
            content=bad,
            headers={**fleet.server.admin_headers, "Content-Type": "application/octet-stream"},
        )
    assert again.status_code == 409, again.text
    assert "reverted fleet-wide" in again.json()["message"]
    assert fleet.told(canary) == v1

    # A new release starts a new rollout, from the canary again.
    v3 = fleet.server.publish("web", program("3"))
    rollout = fleet.rollout()
    assert (rollout["state"], rollout["wave"], rollout["release"], rollout["previous"]) == (
        "rolling",
        0,
        v3,
        v1,
    )
    assert {node: fleet.told(node) for node in fleet.hosts} == {
        node: v3 if node == canary else v1 for node in fleet.hosts
    }


def test_a_release_the_inspector_rolls_back_during_the_bake_halts_and_reverts(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet()
    # Supervisor does not restart a program that exits (autorestart=false), so the crash
    # shows: the inspector sees the service down and rolls it back.
    v1 = fleet.install(program("1"), autorestart=False)
    pids = fleet.pids()
    fleet.set_policy(*STAGED, "--bake", "30")

    # Up longer than the agent's watch (WATCH_SECONDS=1), down well within the bake.
    v2 = fleet.server.publish("web", program("2", "die", die_after=4))
    canary = fleet.waves()[0][0]
    others = [node for node in fleet.hosts if node != canary]
    installed = fleet.tick([canary])[canary]
    assert fleet[canary].history() == {v1: "ok", v2: "ok"}, fleet[canary].debug(installed)
    assert fleet.node_states()[canary] == "baking"

    host = fleet[canary]
    actions: list[str] = []

    def rolled_back() -> bool:
        _, answer = host.check()
        actions.append(answer["services"][0]["action"])
        return actions[-1] == "rolled-back"

    wait_until(rolled_back, 40, f"the inspector on {canary} to roll back")
    assert host.sha() == v1
    assert host.history()[v2] == "err"
    assert_reverted(fleet, canary, v1, v2)

    fleet.tick()  # every host: the canary stays on v1, nobody else ever restarts
    assert fleet.shas() == dict.fromkeys(fleet.hosts, v1)
    assert host.state() == "RUNNING"
    for node in others:
        assert fleet[node].history() == {v1: "ok"}, node
        assert fleet[node].pid() == pids[node], f"{node} was restarted"
    assert [e["kind"] for e in fleet.events()][-2:] == ["rollout-halt", "rollout-revert"]

    with httpx.Client() as http:
        again = http.post(
            f"{fleet.server.api}/admin/bins/web/releases",
            params={"arch": ARCH},
            content=program("2", "die", die_after=4),
            headers={**fleet.server.admin_headers, "Content-Type": "application/octet-stream"},
        )
    assert again.status_code == 409, again.text
