"""Maintenance windows and the fleet-wide freeze (issue 29.1) with five real hosts and the
real CLI, the server's calendar clock set by BIN_MANAGER_CLOCK_START (never the
machine's): a publish before the window opens tells nobody until it opens; a freeze then
holds the next wave, shown in `rollout status` and on the bin page, until `unfreeze`."""

from __future__ import annotations

from typing import Any

from tests.integration.rollouts.conftest import MakeFleet
from tests.integration.rollouts.test_ways_out import bin_page, completed, member, tick_until
from tests.support.fleet_hosts import program

# A Monday, 90 s of the server's calendar before a Berlin working day starts.
CLOCK_START = "2026-12-21T08:58:30+01:00"
WINDOW = "Mon-Fri 09:00-17:00 Europe/Berlin"


def test_a_window_that_opens_during_the_test_and_a_freeze(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(extra_env={"BIN_MANAGER_CLOCK_START": CLOCK_START})
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "3", "--max-failures", "1",
                     "--window", WINDOW)  # fmt: skip
    v2 = fleet.server.publish("web", program("2"))
    rollout = fleet.rollout()
    assert rollout["wave"] == -1, rollout
    assert rollout["held"].startswith(f"outside its window {WINDOW} (it opens Mon 2026-12-21 09:00")
    assert {node: fleet.told(node) for node in fleet.hosts} == dict.fromkeys(fleet.hosts, v1)
    assert f"held: outside its window {WINDOW}" in fleet.cli("rollout", "status", "web").stdout
    start = next(e for e in fleet.events() if e["kind"] == "rollout-start")
    assert "it waits, outside its window" in start["detail"]

    canary = fleet.waves()[0][0]

    def canary_told(rollout: dict[str, Any]) -> bool:
        return bool(rollout["wave"] == 0)

    fleet.converge(canary_told, "the window opens and the canary is told", timeout=150)
    assert fleet.told(canary) == v2
    frozen = fleet.cli("freeze", "--until", "48h", "--reason", "year-end freeze").stdout
    assert frozen.startswith("frozen until 2026-12-23T08:0"), frozen  # 48 h of the calendar
    assert frozen.strip().endswith("year-end freeze (bin-manager unfreeze ends it)")

    def baked_and_held(rollout: dict[str, Any]) -> bool:
        return bool(member(rollout, canary)["state"] == "healthy")

    rollout = tick_until(fleet, baked_and_held, "the canary bakes; the freeze holds the rest")
    assert rollout["wave"] == 0
    assert rollout["held"].startswith("the fleet is frozen until 2026-12-23 08:0")
    assert rollout["stuck"] is None
    others = [node for node in fleet.hosts if node != canary]
    assert {node: fleet.told(node) for node in others} == dict.fromkeys(others, v1)
    text = fleet.cli("rollout", "status", "web").stdout
    assert "year-end freeze" in text, text
    page = bin_page(fleet)
    assert "fleet-freeze" in page
    assert "year-end freeze" in page

    assert fleet.cli("unfreeze").stdout.strip() == "not frozen: held waves start at the next check"
    tick_until(fleet, completed, "unfrozen, the rollout completes")
    assert set(fleet.shas().values()) == {v2}
    with fleet.server.client() as http:
        events = http.get(f"{fleet.server.api}/admin/events", headers=fleet.server.admin_headers)
    steps = {row["kind"]: row["detail"] for row in events.json()["data"]}
    assert "year-end freeze" in steps["freeze"]
    assert "unfreeze" in steps
