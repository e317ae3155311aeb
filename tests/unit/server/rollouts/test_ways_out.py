"""Who takes part in a rollout and the ways out of its waiting and halted states, on a real
SQLite database with the clock given (the Fleet of test_lifecycle.py): stale, held and
revoked nodes left out, a resume that counts a member still on the release as installed,
a revert that tells a signed canary the release it ran before, a stuck wave told once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from ansible_proxy.protocol import NodeInfo, ProgressReport
from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import NodeCredential, Release, Signature
from ansible_proxy.server.db.progress import add_progress
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.policy import IMMEDIATE
from tests.unit.server.rollouts.test_lifecycle import ARCH, BAKE, NODES, Fleet, fleet

__all__ = ["fleet"]


def rollout(fleet: Fleet) -> dict:  # type: ignore[type-arg]
    found: dict = fleet.status()["rollouts"][0]  # type: ignore[type-arg]
    return found


def test_stale_held_and_revoked_nodes_are_left_out_and_shown(fleet: Fleet) -> None:
    fleet.ctx = Context(default_policy=IMMEDIATE, silent_seconds=180, stale_seconds=3600)
    fleet.wait(3600 + 60)
    fleet.seen(*NODES[:4])  # web-04 and web-05 not heard for longer than an hour
    info = NodeInfo(cpuArch=ARCH, osRelease="Debian 12", nodeName=NODES[0],
                    binProxyVersion="1", held={"web": "disk swap"})  # fmt: skip
    with fleet.sessions() as session:
        queries.register_node(session, info, fleet.now)
        session.execute(update(NodeCredential).values(revoked=True))  # none yet: no-op
        session.add(NodeCredential(node_name=NODES[1], revoked=True, changed_at=fleet.now))
        session.commit()
    fleet.publish(b"v2")
    found = rollout(fleet)
    members = {node["name"] for wave in found["waves"] for node in wave["nodes"]}
    assert members == {NODES[2], NODES[3]}
    reasons = {node["name"]: node["reason"] for node in found["leftOut"]}
    assert reasons[NODES[0]] == "held: disk swap"
    assert reasons[NODES[1]].startswith("revoked")
    assert reasons[NODES[4]].startswith("stale: not heard since")
    assert found["leftOutCount"] == 4


def test_when_every_node_is_stale_they_stay_members(fleet: Fleet) -> None:
    fleet.ctx = Context(default_policy=IMMEDIATE, silent_seconds=180, stale_seconds=3600)
    fleet.wait(3600 + 60)  # nobody heard: the server's own absence, say
    fleet.publish(b"v2")
    assert sum(len(wave) for wave in fleet.waves()) == len(NODES)
    assert rollout(fleet)["leftOut"] == []


def test_a_member_held_during_its_wave_is_skipped_not_waited_for(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary, first, _ = fleet.waves()
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    assert rollout(fleet)["wave"] == 1
    held, other = first[0], first[1:]
    info = NodeInfo(cpuArch=ARCH, osRelease="Debian 12", nodeName=held,
                    binProxyVersion="1", held={"web": "maintenance"})  # fmt: skip
    with fleet.sessions() as session:
        queries.register_node(session, info, fleet.now)
        session.commit()
    for name in other:
        fleet.running(name, v2)
    fleet.check(BAKE + 200)  # longer than the silent window: the held node is not judged
    found = rollout(fleet)
    assert found["wave"] == 2
    states = {node["name"]: node["state"] for node in found["waves"][1]["nodes"]}
    assert states[held] == "held"


def test_a_resume_counts_a_member_still_on_the_release_unless_it_is_moving_back(
    fleet: Fleet,
) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    fleet.act("abort")  # the canary is told v1, and has not moved yet
    fleet.act("resume")
    fleet.checked()  # its bake starts at the first check
    fleet.check(BAKE)  # it never reports v2 again: it runs it already
    assert rollout(fleet)["wave"] == 1

    v3 = fleet.publish(b"v3")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v3)
    fleet.act("abort")
    v1 = fleet.v1  # type: ignore[attr-defined]
    reported(fleet, canary, v1, "in_progress")  # the move back has begun
    fleet.act("resume")
    fleet.running(canary, v1)  # … and is reported after the resume: no failure
    assert rollout(fleet)["state"] == "rolling"
    fleet.running(canary, v3)
    fleet.check(BAKE)
    assert rollout(fleet)["wave"] == 1


def reported(fleet: Fleet, name: str, sha: str, status: str) -> None:
    """A progress report as the route records it (its history row)."""
    report = ProgressReport(nodeName=name, binName="web", targetHash=sha, processingTime=1,
                            status=status)  # fmt: skip
    with fleet.sessions() as session:
        bin_, node = queries.require_bin(session, "web"), queries.require_node(session, name)
        add_progress(session, bin_, node, report, fleet.now)
        session.commit()
    fleet.progress(name, sha, status)


def sign(fleet: Fleet, sha: str, sequence: int) -> None:
    """A statement row of that sequence for the release (the server trusts its database)."""
    with fleet.sessions() as session:
        release = session.query(Release).filter_by(sha256=sha).one()
        session.add(
            Signature(
                release_id=release.id, bin_id=release.bin_id, statement=f"s{sequence}",
                statement_sha256=f"{sequence:064d}", kind="release", sequence=sequence,
                key_fingerprint="SHA256:test", signature="sig", created_at=fleet.now,
            )
        )  # fmt: skip
        session.commit()


def test_a_signed_revert_tells_a_canary_the_release_it_ran_before(fleet: Fleet) -> None:
    sign(fleet, fleet.v1, 1)  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    sign(fleet, v2, 2)
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    v3 = fleet.publish(b"v3")  # during v2's canary: supersedes it, the same canary
    sign(fleet, v3, 3)
    assert fleet.waves()[0][0] == canary
    fleet.running(canary, v3)
    fleet.act("abort")
    assert fleet.told(canary) == v2
    others = [name for name in NODES if name != canary]
    assert {fleet.told(name) for name in others} == {fleet.v1}  # type: ignore[attr-defined]
    found = rollout(fleet)["revert"]
    assert found["toldBack"] == [{"name": canary, "release": v2}]
    assert [node["name"] for node in found["stranded"]] == [canary]  # until it moves
    fleet.running(canary, v2)
    assert rollout(fleet)["revert"]["stranded"] == []


def test_an_unsigned_revert_tells_everyone_the_previous_release(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    v3 = fleet.publish(b"v3")
    fleet.running(canary, v3)
    fleet.act("abort")
    assert fleet.told(canary) == fleet.v1  # type: ignore[attr-defined]
    assert rollout(fleet)["revert"]["toldBack"] == []


def test_a_stuck_wave_is_told_once(fleet: Fleet) -> None:
    fleet.ctx = Context(
        default_policy=IMMEDIATE, silent_seconds=180, notify=fleet._notify, stuck_seconds=600
    )
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.now += timedelta(seconds=BAKE + 601)
    fleet.checked()
    fleet.checked()
    stuck = [text for event, text in fleet.notified if event == "rollout-stuck"]
    assert len(stuck) == 1, fleet.notified
    assert f"{canary} (" in stuck[0], stuck
    assert rollout(fleet)["stuck"]["waitingOn"][0]["name"] == canary
    fleet.running(canary, v2)
    fleet.check(BAKE)
    assert rollout(fleet)["stuck"] is None
