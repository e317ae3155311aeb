"""Honest counts (issue 29.5) with five real hosts: a host that stops calling during its
bake is counted offline, not healthy and not failed; over --max-offline its wave waits and
says so (`rollout status`, its JSON and the bin's page) and nothing is reverted; back, it
bakes again and the rollout completes."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.rollouts.conftest import MakeFleet
from tests.integration.rollouts.test_ways_out import bin_page, completed, member, tick_until
from tests.support.fleet_hosts import program

SILENT = 8  # BIN_MANAGER_ROLLOUT_SILENT_SECONDS: the hosts ticked in a loop stay inside it
BAKE = 20  # longer than the silent window: a host can go silent during its bake


def test_a_host_silent_during_its_bake_is_offline_and_its_wave_waits_over_max_offline(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet(extra_env={"BIN_MANAGER_ROLLOUT_SILENT_SECONDS": str(SILENT)})
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", str(BAKE), "--max-failures", "1",
                     "--max-offline", "0")  # fmt: skip
    v2 = fleet.server.publish("web", program("2"))
    _, rest = fleet.waves()
    tick_until(fleet, lambda rollout: rollout["wave"] == 1, "the canary is baked")
    fleet.tick(rest)  # the last wave installs the release and starts its bake …
    away = rest[0]  # … and this host stops calling: switched off, or its network down
    online = [node for node in fleet.hosts if node != away]

    def offline(rollout: dict[str, Any]) -> bool:
        return bool(member(rollout, away)["state"] == "offline")

    rollout = tick_until(fleet, offline, f"{away} is counted offline", nodes=online)
    wave = rollout["waves"][1]
    assert wave["tally"]["offline"] == 1
    assert (wave["failures"], wave["tally"]["failed"]) == (0, 0)
    assert (wave["offlineLimit"], rollout["state"], rollout["reverted"]) == (0, "rolling", False)
    why = "1 of 4 nodes offline, over --max-offline 0 (0): the wave waits"

    def waits(rollout: dict[str, Any]) -> bool:
        return bool(rollout["waves"][1]["waitingFor"] == why)

    tick_until(fleet, waits, "the others are baked, the wave waits", nodes=online)
    assert fleet.told(away) == v2  # nothing reverted, nothing marked bad
    assert fleet[away].sha() == v2
    text = fleet.cli("rollout", "status", "web").stdout
    assert "offline 1/0, not installed 0, refused 0/any" in text, text
    assert f"waiting: {why}" in text, text
    shown = json.loads(fleet.cli("rollout", "status", "web", "--json").stdout)
    assert shown["rollouts"][0]["waves"][1]["tally"]["offline"] == 1
    page = bin_page(fleet)
    assert f"waiting: {why}" in page
    assert '<td class="wave-offline">1 / 0</td>' in page
    kinds = [event["kind"] for event in fleet.events()]
    assert "rollout-node-offline" in kinds
    assert "rollout-halt" not in kinds

    # Back: its bake starts again, and once it stayed healthy the rollout completes.
    rollout = tick_until(fleet, completed, f"{away} is back and baked")
    assert member(rollout, away)["state"] == "healthy"
    assert set(fleet.shas().values()) == {v2}
    assert fleet[away].history() == {v1: "ok", v2: "ok"}
    assert "rollout-halt" not in [event["kind"] for event in fleet.events()]
