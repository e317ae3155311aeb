"""kill -9 of the bin-manager in the middle of a rollout: restarted on the same data, it
goes on from the same wave and bake, and tells no host the release before its wave."""

from __future__ import annotations

from tests.integration.rollouts.conftest import MakeFleet
from tests.support.fleet_hosts import Watcher, assert_waited_for_bakes, program

BAKE = 10  # longer than a restart on a busy machine: the canary is still baking after it


def test_a_rollout_goes_on_from_where_it_was_after_kill_9(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", str(BAKE),
                     "--max-failures", "1")  # fmt: skip

    with Watcher(fleet).running() as watcher:
        v2 = fleet.server.publish("web", program("2"))
        waves = fleet.waves()
        canary, rest = waves
        fleet.tick(canary)
        before = fleet.rollout()
        assert fleet.node_states()[canary[0]] == "baking"

        fleet.server.kill()
        fleet.server.start()
        after = fleet.rollout()
        assert (after["id"], after["state"], after["wave"]) == (before["id"], "rolling", 0)
        assert fleet.node_states() == {
            node: "baking" if node in canary else "waiting" for node in fleet.hosts
        }
        assert {node: fleet.told(node) for node in rest} == dict.fromkeys(rest, v1)

        fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
    assert set(fleet.shas().values()) == {v2}
    assert [e["kind"] for e in fleet.events()].count("rollout-start") == 1
    assert_waited_for_bakes(fleet, watcher, waves, (v1, v2), BAKE)
