"""A good release walks the fleet wave by wave (docs/bin-manager.md "Rollouts"): the
canary first, each later wave only once the wave before stayed healthy for the bake."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.support.fleet_hosts import Watcher, assert_waited_for_bakes, program

BAKE = 3


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_good_release_reaches_every_host_wave_by_wave(
    make_fleet: MakeFleet, database: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    fleet = make_fleet(database_url=url)
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "50%,100%", "--bake", str(BAKE),
                     "--max-failures", "1")  # fmt: skip

    with Watcher(fleet).running() as watcher:
        v2 = fleet.server.publish("web", program("2"))
        waves = fleet.waves()
        assert [len(wave) for wave in waves] == [1, 2, 2]  # 1, then up to 50 % of 5, then all
        canary = waves[0][0]
        assert fleet.told(canary) == v2
        assert {node: fleet.told(node) for node in waves[1] + waves[2]} == dict.fromkeys(
            waves[1] + waves[2], v1
        )
        fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
        fleet.tick()  # every host once more: nothing changes

    assert set(fleet.shas().values()) == {v2}
    for host in fleet.hosts.values():
        assert host.history() == {v1: "ok", v2: "ok"}
    events = [event for event in fleet.events() if event["kind"] != "rollout-policy"]
    kinds = [event["kind"] for event in events]
    assert kinds == ["rollout-start", "rollout-promote", "rollout-promote", "rollout-complete"]
    assert_waited_for_bakes(fleet, watcher, waves, (v1, v2), BAKE)

    status = fleet.cli("rollout", "status", "web", "--json")
    data = json.loads(status.stdout)
    assert data["state"] == "completed"
    assert data["rollouts"][0]["state"] == "completed"
    assert all(
        node["state"] == "healthy"
        for wave in data["rollouts"][0]["waves"]
        for node in wave["nodes"]
    )


def test_the_canary_label_picks_the_nodes_an_admin_labelled_not_those_labelling_themselves(
    make_fleet: MakeFleet,
) -> None:
    labelled, claims = "host-2", "host-3"  # host-3 says tier=canary in its own NODE_LABELS
    fleet = make_fleet(labels={claims: "tier=canary", "host-4": "tier=main"})
    v1 = fleet.install(program("1"))
    shown = fleet.cli("nodes", "label", labelled, "tier=canary", "zone=a")
    assert shown.stdout.strip() == f"{labelled}: admin labels tier=canary,zone=a"
    assert fleet.cli("nodes", "label", labelled, "zone-").stdout.strip().endswith("tier=canary")
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "2", "--max-failures", "1",
                     "--canary-label", "tier=canary")  # fmt: skip

    v2 = fleet.server.publish("web", program("2"))
    waves = fleet.waves()
    assert waves[0] == [labelled]
    assert sorted(waves[1]) == sorted(set(NODES) - {labelled})
    assert {node: fleet.told(node) for node in NODES} == {
        node: v2 if node == labelled else v1 for node in NODES
    }
    fleet.tick()
    assert fleet.shas() == {node: v2 if node == labelled else v1 for node in NODES}

    fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
    assert set(fleet.shas().values()) == {v2}

    # `reported:` asks for the nodes' own word, knowingly.
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "2", "--max-failures", "1",
                     "--canary-label", "reported:tier=canary")  # fmt: skip
    fleet.server.publish("web", program("3"))
    assert fleet.waves()[0] == [claims]


def test_an_offline_node_does_not_block_its_wave_and_is_told_when_it_is_back(
    make_fleet: MakeFleet,
) -> None:
    # A member silent this long counts as offline when its wave starts (failed when it
    # goes silent during its bake): longer than a round of ticks on a busy machine.
    silent = 8
    fleet = make_fleet(extra_env={"BIN_MANAGER_ROLLOUT_SILENT_SECONDS": str(silent)})
    v1 = fleet.install(program("1"))
    bake = 5  # wave 2 starts two bakes after the publish: the offline host is silent by then
    fleet.set_policy("--canary", "1", "--waves", "50%,100%", "--bake", str(bake),
                     "--max-failures", "1")  # fmt: skip

    v2 = fleet.server.publish("web", program("2"))
    waves = fleet.waves()
    away = waves[2][-1]  # from now on it does not tick: switched off, unreachable
    online = [node for node in NODES if node != away]

    deadline = time.monotonic() + 60
    seen_offline = False
    while fleet.rollout()["state"] != "completed":
        assert time.monotonic() < deadline, fleet.rollout()
        fleet.tick(online)  # every online host each round: none of them goes silent
        seen_offline = seen_offline or fleet.node_states()[away] == "offline"
    assert seen_offline, "the away host was never shown offline"
    rollout = fleet.rollout()
    assert all(wave["failures"] == 0 for wave in rollout["waves"]), rollout
    assert fleet.node_states() == {node: "offline" if node == away else "healthy" for node in NODES}
    assert {node: fleet[node].sha() for node in online} == dict.fromkeys(online, v2)
    assert fleet[away].sha() == v1

    # Back: its next tick is told the release and installs it.
    assert fleet.told(away) == v2
    fleet.tick([away])
    assert fleet[away].sha() == v2
    assert fleet[away].history() == {v1: "ok", v2: "ok"}
