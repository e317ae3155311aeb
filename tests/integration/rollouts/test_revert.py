"""The emergency path (issue 29.6) with five real hosts and the real CLI: `bin-manager
rollout revert web --reason …` moves every host back to the last completed release at
once — after a completed rollout, and in the middle of a canary's long bake — and the
activity log and the audit trail keep who did it and why."""

from __future__ import annotations

from tests.integration.rollouts.conftest import MakeFleet
from tests.support.fleet_hosts import program


def test_rollout_revert_moves_every_host_back_at_once_and_says_why(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "50%,100%", "--bake", "1", "--max-failures", "1")
    v2 = fleet.server.publish("web", program("2"))
    fleet.converge(lambda rollout: rollout["state"] == "completed", "v2 reaches every host")
    assert set(fleet.shas().values()) == {v2}

    done = fleet.cli("rollout", "revert", "web", "--reason", "error budget burnt")
    assert done.stdout.strip() == (
        f"web (x86_64): reverted at once: every node is told {v1[:12]} again, "
        f"{v2[:12]} is marked bad (error budget burnt)"
    )
    assert {node: fleet.told(node) for node in fleet.hosts} == dict.fromkeys(fleet.hosts, v1)
    fleet.tick()
    assert fleet.shas() == dict.fromkeys(fleet.hosts, v1)
    for node in fleet.hosts:
        assert fleet[node].state() == "RUNNING", node

    # In the middle of a canary's hour-long bake: nothing is waited for.
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "3600", "--max-failures", "1")
    v3 = fleet.server.publish("web", program("3"))
    canary = fleet.waves()[0][0]
    fleet.tick([canary])
    assert fleet[canary].sha() == v3
    fleet.cli("rollout", "revert", "web", "--reason", "canary logs look wrong")
    fleet.tick()
    assert fleet.shas() == dict.fromkeys(fleet.hosts, v1)
    rollout = fleet.rollout()
    assert (rollout["state"], rollout["reverted"]) == ("halted", True)
    assert rollout["reason"] == "reverted at once by an operator: canary logs look wrong"

    reverts = [e for e in fleet.events() if e["kind"] == "rollout-revert"]
    assert [e["sha256"] for e in reverts] == [v2, v3]
    assert "error budget burnt" in reverts[0]["detail"]
    with fleet.server.client() as http:
        trail = http.get(f"{fleet.server.api}/admin/audit", headers=fleet.server.admin_headers)
    assert trail.status_code == 200, trail.text
    entries = [row for row in trail.json()["data"] if row["action"] == "rollout-revert"]
    assert [row["detail"] for row in reversed(entries)] == [
        "reason: error budget burnt",
        "reason: canary logs look wrong",
    ]
    assert {row["actor"] for row in entries} == {"admin-token"}
    refused = fleet.cli("rollout", "revert", "web", check=False)
    assert refused.returncode == 2, refused.stderr
    assert "--reason" in refused.stderr
