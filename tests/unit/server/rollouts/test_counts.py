"""Honest counts (issue 29.5), on a real SQLite database with the clock given (the Fleet of
test_lifecycle.py): a member silent during its bake is offline, not failed and not
healthy; a wave over --max-offline or --max-refused waits and says so, never reverts;
`rollout status` counts failed, offline, not installed and refused apart."""

from __future__ import annotations

from typing import Any

from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.policy import IMMEDIATE
from tests.unit.server.rollouts.test_lifecycle import BAKE, NODES, Fleet, fleet

__all__ = ["fleet"]
SILENT = 180  # the Fleet's silent window


def rollout(fleet: Fleet) -> dict[str, Any]:
    found: dict[str, Any] = fleet.status()["rollouts"][0]
    return found


def others(*names: str) -> list[str]:
    return [name for name in NODES if name not in names]


def test_a_member_silent_during_its_bake_is_offline_not_failed_and_bakes_again_once_back(
    fleet: Fleet,
) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    fleet.wait(SILENT + 1)  # most of its bake gone, then silent for the whole window
    fleet.seen(*others(canary))
    fleet.checked()
    found = rollout(fleet)
    assert (found["state"], found["reverted"], found["wave"]) == ("rolling", False, 0)
    wave = found["waves"][0]
    assert wave["tally"]["offline"] == 1
    assert (wave["failures"], wave["tally"]["failed"], wave["tally"]["healthy"]) == (0, 0, 0)
    assert wave["nodes"][0]["state"] == "offline"
    assert wave["waitingFor"] == "no node stayed healthy yet (of 1 nodes): nothing is proved"
    assert fleet.told(canary) == v2  # nothing reverted, nothing marked bad
    # Back: its bake starts again from there, a whole bake, never what it had before.
    fleet.check(1)
    assert rollout(fleet)["waves"][0]["nodes"][0]["state"] == "baking"
    fleet.check(BAKE - 2)
    assert rollout(fleet)["wave"] == 0
    fleet.check(2)
    assert rollout(fleet)["wave"] == 1


def test_a_wave_over_max_offline_waits_says_so_and_is_stuck_never_reverted(
    fleet: Fleet,
) -> None:
    fleet.ctx = Context(
        default_policy=IMMEDIATE, silent_seconds=SILENT, notify=fleet.ctx.notify, stuck_seconds=600
    )
    fleet.set_policy(canary="1", waves="100%", bake=BAKE, max_failures="1", max_offline="1")
    v2 = fleet.publish(b"v2")
    canary, rest = fleet.waves()
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    assert rollout(fleet)["wave"] == 1
    away = rest[:2]  # two of five switched off: one more than --max-offline 1
    for name in rest[2:]:
        fleet.running(name, v2)
    fleet.wait(SILENT + 1)
    fleet.seen(*others(*away))
    fleet.checked()
    found = rollout(fleet)
    wave = found["waves"][1]
    assert wave["tally"] == {
        "failed": 0, "offline": 2, "notInstalled": 0, "refused": 0, "hostTrouble": 0,
        "baking": 0, "healthy": 3,
    }  # fmt: skip
    assert (wave["offlineLimit"], wave["refusedLimit"]) == (1, None)
    assert wave["waitingFor"] == "2 of 5 nodes offline, over --max-offline 1 (1): the wave waits"
    assert (found["state"], found["reverted"]) == ("rolling", False)
    fleet.wait(600)  # past the bake and the stuck time: the operator is told, nothing reverts
    fleet.seen(*others(*away))
    fleet.checked()
    found = rollout(fleet)
    assert (found["state"], found["reverted"]) == ("rolling", False)
    assert "over --max-offline 1" in found["stuck"]["text"]
    stuck = [text for event, text in fleet.notified if event == "rollout-stuck"]
    assert len(stuck) == 1
    assert "2 of 5 nodes offline, over --max-offline 1" in stuck[0]
    # One comes back and installs: within the limit, the rollout completes.
    fleet.running(away[0], v2)
    fleet.wait(BAKE)
    fleet.seen(*others(away[1]))
    fleet.checked()
    assert rollout(fleet)["state"] == "completed"
    assert {node["name"]: node["state"] for node in rollout(fleet)["waves"][1]["nodes"]} == {
        name: "offline" if name == away[1] else "healthy" for name in rest
    }


def test_refusals_over_max_refused_hold_the_wave_and_counts_stay_apart(fleet: Fleet) -> None:
    fleet.set_policy(canary="3", waves="100%", bake=BAKE, max_failures="2", max_refused="0")
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0]
    refusing, failing, fine = canary
    fleet.progress(refusing, v2, "failed", "trust: signed by no trusted key", cause="refused")
    fleet.progress(failing, v2, "failed", "exited at start")
    fleet.running(fine, v2)
    fleet.check(BAKE)
    found = rollout(fleet)
    wave = found["waves"][0]
    assert (found["state"], found["wave"]) == ("rolling", 0)  # 1 failure of 2 allowed
    assert wave["tally"] == {
        "failed": 1, "offline": 0, "notInstalled": 0, "refused": 1, "hostTrouble": 0,
        "baking": 0, "healthy": 1,
    }  # fmt: skip
    assert (
        wave["waitingFor"] == "1 of 3 nodes refusing it, over --max-refused 0 (0): the wave waits"
    )
    fleet.running(refusing, v2)  # its host trusts the key now: it installs and bakes
    fleet.check(BAKE)
    assert rollout(fleet)["wave"] == 1


def test_not_installed_members_are_counted_and_waited_for(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary, wave1, _ = fleet.waves()
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    fleet.running(wave1[0], v2)
    fleet.check(BAKE)
    wave = rollout(fleet)["waves"][1]
    assert (wave["tally"]["notInstalled"], wave["tally"]["healthy"]) == (1, 1)
    assert wave["waitingFor"] == "1 not installed yet (of 2 nodes)"
    assert rollout(fleet)["waves"][2]["tally"] is None  # not started
