"""A failure the release did not cause does not fail the release (issue 26.2): a canary
that could not even store the release (its STORE_DIR full) reports `cause: host`; the
rollout goes on, the node shows as host trouble, and the release stays good. A failed
report without a cause (an agent of the original design) still halts, as before."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.rollouts.conftest import MakeFleet
from tests.support.fleet_hosts import ARCH, Fleet, program

NODES = ("host-1", "host-2", "host-3")
POLICY = ("--canary", "1", "--waves", "100%", "--bake", "2", "--max-failures", "1")


@contextmanager
def small_filesystem(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `directory` (kept as it was: unmounted after)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


def bad_release_refused(fleet: Fleet, content: bytes) -> bool:
    """True when publishing `content` again is refused as a release reverted as bad."""
    with fleet.server.client() as http:
        answer = http.post(
            f"{fleet.server.api}/admin/bins/web/releases",
            params={"arch": ARCH},
            content=content,
            headers={**fleet.server.admin_headers, "Content-Type": "application/octet-stream"},
        )
    return answer.status_code == 409 and "reverted fleet-wide" in answer.json()["message"]


def test_a_canary_whose_store_is_full_does_not_fail_the_release(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=NODES)
    # The canary's store takes v1, not v2.
    canary = NODES[0]
    with small_filesystem(fleet[canary].store_dir, "256k") as store:
        v1 = fleet.install(program("1"))
        fleet.set_policy(*POLICY, "--canary-nodes", canary)
        v2_content = program("2") + b"# padding\n" * 100_000  # 1 MB: more than the store holds
        v2 = fleet.server.publish("web", v2_content)
        assert fleet.waves()[0] == [canary]
        failed = fleet.tick([canary], expect=(75, 1))[canary]
        assert fleet[canary].sha() == v1, fleet[canary].debug(failed)

        rollout = fleet.wait_rollout("the canary's report counted", wave=0)
        canary_wave = rollout["waves"][0]
        assert (rollout["state"], rollout["reverted"]) == ("rolling", False), rollout
        assert canary_wave["failures"] == 0, rollout
        assert canary_wave["counts"] == {"host-trouble": 1}, rollout
        assert canary_wave["nodes"][0]["reason"], rollout  # the agent's own words
        reports = [row for row in fleet.progress(canary) if row["status"] == "failed"]
        assert [row["cause"] for row in reports] == ["host"], reports
        assert fleet.told(canary) == v2  # not reverted, not marked bad: it may try again
        assert not bad_release_refused(fleet, v2_content)

        # The host is fixed: its next tick installs the release, which bakes as any other.
        subprocess.run(["mount", "-o", "remount,size=64m", str(store)], check=True)
        fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
    assert set(fleet.shas().values()) == {v2}
    kinds = [event["kind"] for event in fleet.events()]
    assert "rollout-node-trouble" in kinds
    assert not {"rollout-node-failed", "rollout-halt", "rollout-revert"} & set(kinds), kinds


def test_a_failed_report_without_a_cause_halts_as_before(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=NODES)
    v1 = fleet.install(program("1"))
    fleet.set_policy(*POLICY)
    v2_content = program("2")
    v2 = fleet.server.publish("web", v2_content)
    canary = fleet.waves()[0][0]
    token = fleet[canary].node_token_file.read_text().strip()
    with fleet.server.client() as http:  # as an agent of the original design reports it
        answer = http.post(
            f"{fleet.server.api}/bins/web/progress",
            json={"nodeName": canary, "binName": "web", "targetHash": v2,
                  "processingTime": 3, "status": "failed"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text
    rollout = fleet.wait_rollout("the rollout halts", state="halted", reverted=True)
    assert rollout["waves"][0]["nodes"][0]["state"] == "failed"
    assert {node: fleet.told(node) for node in NODES} == dict.fromkeys(NODES, v1)
    assert bad_release_refused(fleet, v2_content)
    assert [row["cause"] for row in fleet.progress(canary) if row["status"] == "failed"] == [
        "release"
    ]
