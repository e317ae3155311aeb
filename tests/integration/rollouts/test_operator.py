"""The operator's hands on a rollout, from the shell: `bin-manager rollout promote`
skips a bake, `halt` stops further waves, `resume` goes on, `abort` reverts every host."""

from __future__ import annotations

import time

from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.support.fleet_hosts import Fleet, program


def told_all(fleet: Fleet) -> dict[str, str]:
    return {node: fleet.told(node) for node in fleet.hosts}


def test_promote_halt_resume_and_abort_from_the_cli(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "50%,100%", "--bake", "3600",
                     "--max-failures", "1")  # fmt: skip
    v2 = fleet.server.publish("web", program("2"))
    canary, first, last = fleet.waves()
    fleet.tick(canary)
    assert fleet[canary[0]].sha() == v2
    canary_wave = fleet.rollout()["waves"][0]
    assert canary_wave["nodes"][0]["state"] == "baking"
    assert canary_wave["bakeRemaining"] > 3000

    # promote: wave 1 starts now, an hour before the canary's bake would have ended
    promoted = fleet.cli("rollout", "promote", "web")
    assert promoted.stdout == f"web (x86_64) {v2[:12]}: wave 1 started\n"
    assert fleet.rollout()["wave"] == 1
    assert told_all(fleet) == {node: v1 if node in last else v2 for node in NODES}
    fleet.tick(first)

    # halt: nobody else is told v2; those told keep it
    halted = fleet.cli("rollout", "halt", "web")
    assert "halted" in halted.stdout
    rollout = fleet.rollout()
    assert (rollout["state"], rollout["wave"], rollout["reverted"]) == ("halted", 1, False)
    refused = fleet.cli("rollout", "promote", "web", check=False)
    assert refused.returncode != 0
    assert "only a rolling rollout is promoted" in refused.stderr
    fleet.tick(last)
    assert fleet.shas() == {node: v1 if node in last else v2 for node in NODES}

    # resume: rolling again at wave 1; promote again: the last wave
    resumed = fleet.cli("rollout", "resume", "web")
    assert resumed.stdout == f"web (x86_64) {v2[:12]}: resumed at wave 1\n"
    assert fleet.rollout()["state"] == "rolling"
    fleet.cli("rollout", "promote", "web")
    assert set(told_all(fleet).values()) == {v2}
    fleet.tick(last)
    assert set(fleet.shas().values()) == {v2}

    # abort: every host is told v1 again and reinstalls it from its own store
    downloads = {node: host.downloads() for node, host in fleet.hosts.items()}
    aborted = fleet.cli("rollout", "abort", "web")
    assert f"every node is told {v1[:12]} again" in aborted.stdout
    rollout = fleet.rollout()
    assert (rollout["state"], rollout["reverted"]) == ("halted", True)
    assert set(told_all(fleet).values()) == {v1}
    fleet.tick()
    assert fleet.shas() == dict.fromkeys(NODES, v1)
    assert {node: host.downloads() for node, host in fleet.hosts.items()} == downloads
    for host in fleet.hosts.values():
        assert host.state() == "RUNNING"

    status = fleet.cli("rollout", "status", "web")
    assert f"x86_64: halted and reverted: {v2[:12]} (previous {v1[:12]})" in status.stdout
    kinds = [event["kind"] for event in fleet.events()][1:]
    assert kinds == ["rollout-start", "rollout-promote", "rollout-halt", "rollout-resume",
                     "rollout-promote", "rollout-halt", "rollout-revert"]  # fmt: skip


def test_a_halted_rollout_starts_no_wave_after_the_bake_until_resumed(
    make_fleet: MakeFleet,
) -> None:
    bake = 3
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", str(bake),
                     "--max-failures", "1")  # fmt: skip
    v2 = fleet.server.publish("web", program("2"))
    canary, rest = fleet.waves()
    fleet.cli("rollout", "halt", "web")
    fleet.tick()  # the canary was told v2 before the halt: it keeps it
    assert fleet.shas() == {node: v2 if node in canary else v1 for node in NODES}

    time.sleep(bake + 2)  # well past the canary's bake: several checks ran meanwhile
    fleet.tick(rest)
    rollout = fleet.rollout()
    assert (rollout["state"], rollout["wave"]) == ("halted", 0)
    assert fleet.node_states()[canary[0]] == "baking"
    assert {node: fleet.told(node) for node in rest} == dict.fromkeys(rest, v1)
    assert fleet.shas() == {node: v2 if node in canary else v1 for node in NODES}

    fleet.cli("rollout", "resume", "web")
    fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
    assert set(fleet.shas().values()) == {v2}
