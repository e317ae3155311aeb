"""`bin-manager rollout plan` (issue 29.7) with five real hosts: before anything is
published it names which host goes in which wave and when at the earliest; the publish
then starts exactly those waves, and no wave starts before its planned time."""

from __future__ import annotations

import json

from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.support.fleet_hosts import program, stamp

BAKE = 3


def test_the_plan_names_the_waves_the_publish_then_walks(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(labels={"host-4": "ring=0"})
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "50%,100%", "--bake", str(BAKE),
                     "--max-failures", "1", "--canary-label", "reported:ring=0")  # fmt: skip
    before = fleet.events()

    planned = json.loads(fleet.cli("rollout", "plan", "web", "--json").stdout)["plans"]
    assert [plan["arch"] for plan in planned] == ["x86_64"]
    waves = planned[0]["waves"]
    assert waves[0]["nodes"] == ["host-4"]  # the labelled canary
    assert sorted(name for wave in waves for name in wave["nodes"]) == sorted(NODES)
    assert [len(wave["nodes"]) for wave in waves] == [1, 2, 2]
    assert [wave["earliestSeconds"] for wave in waves] == [0, BAKE, 2 * BAKE]
    assert planned[0]["completesAfterSeconds"] == 3 * BAKE
    text = fleet.cli("rollout", "plan", "web").stdout
    assert "the canary  1 node    at the publish" in text, text
    assert f"wave 1      2 nodes   {BAKE}s after, at the earliest" in text, text
    assert fleet.events() == before  # nothing published, nothing changed
    assert {node: fleet.told(node) for node in NODES} == dict.fromkeys(NODES, v1)

    v2 = fleet.server.publish("web", program("2"))
    assert [sorted(names) for names in fleet.waves()] == [sorted(w["nodes"]) for w in waves]
    fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
    assert set(fleet.shas().values()) == {v2}
    steps = [e for e in fleet.events() if e["kind"] in ("rollout-start", "rollout-promote")]
    start = stamp(steps[0]["at"])
    promoted = [stamp(step["at"]) - start for step in steps[1:]]
    assert len(promoted) == 2
    for after, wave in zip(promoted, waves[1:], strict=True):
        assert after >= wave["earliestSeconds"], (promoted, waves)
