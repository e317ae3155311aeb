"""A fleet revert with signatures lands every node (issue 26.4), with real agents that check
TRUSTED_KEYS: A, B and C signed (sequences 1, 2, 3), C published during B's canary, then
C reverted. The canary ran B before C: a signed host moves back unsigned only one step, to
the release it ran before, so the server tells it B, not A (which it would refuse every
tick as a replay of sequence 1 below 3); every other node is told A. An unsigned pin of A
warns (and host-1 refuses it); a signed pin of A brings the canary to A too."""

from __future__ import annotations

from pathlib import Path

from tests.integration.agent.test_signed_releases import Publishers
from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.support.fleet_hosts import program

THREE = NODES[:3]


def test_a_signed_fleet_reverted_past_a_superseded_canary_release_lands_every_node(
    make_fleet: MakeFleet, tmp_path: Path
) -> None:
    fleet = make_fleet(nodes=THREE)
    publishers = Publishers(tmp_path / "keys", fleet.server)
    alice = publishers.key("alice")
    trusted = publishers.trust("alice")
    for host in fleet.hosts.values():
        host.env["TRUSTED_KEYS"] = str(trusted)

    a = publishers.publish("web", program("A"), alice)  # the first release: every node
    fleet.add_programs()
    fleet.tick()
    assert fleet.shas() == dict.fromkeys(THREE, a)
    fleet.set_policy("--canary-nodes", "host-1", "--canary", "1", "--waves", "100%",
                     "--bake", "3600", "--max-failures", "1")  # fmt: skip

    b = publishers.publish("web", program("B"), alice)
    fleet.tick(["host-1"])
    assert fleet["host-1"].sha() == b
    c = publishers.publish("web", program("C"), alice)  # during B's canary: supersedes it
    fleet.tick(["host-1"])
    assert fleet["host-1"].sha() == c

    aborted = fleet.cli("rollout", "abort", "web")
    assert f"every node is told {a[:12]} again" in aborted.stdout
    assert {node: fleet.told(node) for node in THREE} == {"host-1": b, "host-2": a, "host-3": a}
    revert = next(e for e in fleet.events() if e["kind"] == "rollout-revert")
    assert f"host-1 {b[:12]}" in revert["detail"], revert

    for _ in range(2):  # every node lands, and stays, without a refusal
        fleet.tick()
    assert fleet.shas() == {"host-1": b, "host-2": a, "host-3": a}
    assert "a move back to the version verified here before: allowed" in fleet["host-1"].log()
    assert "refused" not in fleet["host-1"].log()
    rollout = fleet.rollout()
    assert (rollout["state"], rollout["reverted"]) == ("halted", True)
    assert rollout["revert"]["toldBack"] == [{"name": "host-1", "release": b}]
    assert rollout["revert"]["stranded"] == []
    status = fleet.cli("rollout", "status", "web").stdout
    assert f"host-1 is told {b[:12]}, the release it ran before {c[:12]}" in status, status

    # An unsigned pin of A is one more step back for host-1: refused, and the CLI warns.
    unsigned = fleet.cli("pin", "web", a)
    assert "warning: web's releases are signed" in unsigned.stderr, unsigned.stderr
    fleet.tick(expect=(0, 1))
    assert fleet["host-1"].sha() == b
    # The documented way to bring it to A as well: a pin every signed host takes.
    pinned = fleet.cli("pin", "web", a, "--sign-key", str(alice))
    assert pinned.returncode == 0, pinned.stderr
    fleet.tick()
    assert fleet.shas() == dict.fromkeys(THREE, a)
