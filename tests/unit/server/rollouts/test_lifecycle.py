"""A staged rollout on a real SQLite database, the clock given: who is told what, when a
wave is promoted, and how a failing wave halts and reverts the fleet.

The heard clock (rollouts/heard.py) follows the given clock, and every change a node
reports is checked at once, as the server's background check would within its interval.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import NodeInfo
from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Event, Rollout
from ansible_proxy.server.hotpath.pointers import PointerCache, resolve
from ansible_proxy.server.problems import Conflict
from ansible_proxy.server.rollouts import engine, members
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.heard import HeardClock
from ansible_proxy.server.rollouts.policy import IMMEDIATE, make_policy
from ansible_proxy.server.rollouts.status import bin_status
from ansible_proxy.server.services import releases, rollouts
from ansible_proxy.server.storage.artifacts import ArtifactStore, StoredArtifact

START = datetime(2026, 12, 1, 8, 0, 0)
ARCH = "x86_64"
NODES = [f"web-{n:02d}" for n in range(6)]
BAKE = 60


class Fleet:
    """A bin-manager's database and the calls its routes would make, at a given time."""

    def __init__(self, tmp_path: Path, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.store = ArtifactStore(tmp_path / "artifacts")
        self.store.prepare()
        self.cache = PointerCache(ttl=0.0)
        self.notified: list[tuple[str, str]] = []
        self.ctx = Context(default_policy=IMMEDIATE, silent_seconds=180, notify=self._notify)
        self.now = START
        # The given clock for both the process and the database; never an outage.
        self.heard = HeardClock(1e6, clock=self._seconds, db_clock=lambda _: self._seconds())
        self.heard.advance(sessions)

    def _seconds(self) -> float:
        return self.now.timestamp()

    def wait(self, seconds: float) -> None:
        """Time passes with the server up and hearing: the heard clock advances too."""
        self.now += timedelta(seconds=seconds)
        self.heard.advance(self.sessions)

    def checked(self) -> None:
        """The background check, now (no time passes)."""
        engine.check_all(self.sessions, self.ctx, self.now)
        self.cache.clear()

    def _notify(
        self, _s: Session, event: str, text: str, _d: Mapping[str, Any], _n: datetime
    ) -> None:
        self.notified.append((event, text))

    def publish(self, content: bytes) -> str:
        async def chunks() -> AsyncIterator[bytes]:
            yield content

        async def receive() -> StoredArtifact:
            return await self.store.receive(chunks(), 1 << 20)

        artifact = anyio.run(receive)
        with self.sessions() as session:
            releases.publish(
                session, self.store, self.cache, "web", ARCH, artifact, self.now, self.ctx
            )
        self.checked()
        return artifact.sha256

    def register(self, name: str, labels: dict[str, str] | None = None) -> None:
        info = NodeInfo(
            cpuArch=ARCH, osRelease="Debian 12", nodeName=name, binProxyVersion="1", labels=labels
        )
        with self.sessions() as session:
            queries.register_node(session, info, self.now)
            session.commit()

    def running(self, name: str, sha: str) -> None:
        with self.sessions() as session:
            bin_, node = queries.require_bin(session, "web"), queries.require_node(session, name)
            queries.report_bin(session, bin_, node, sha, "latest", self.now)
            members.note_running(session, self.ctx, bin_, node, sha, self.now)
            session.commit()
        self.checked()

    def progress(
        self, name: str, sha: str, status: str, reason: str | None = None, cause: str | None = None
    ) -> None:
        with self.sessions() as session:
            bin_, node = queries.require_bin(session, "web"), queries.require_node(session, name)
            members.note_progress(
                session, self.ctx, bin_, node, sha, status, reason, self.now, cause
            )
            session.commit()
        self.checked()

    def seen(self, *names: str) -> None:
        with self.sessions() as session:
            for name in names:
                queries.touch_node_named(session, name, self.now)
            session.commit()

    def told(self, name: str) -> str:
        async def ask() -> str:
            return (await resolve(self.sessions, self.cache, "web", ARCH, name)).sha256

        return anyio.run(ask)

    def check(self, seconds: float) -> None:
        self.wait(seconds)
        self.seen(*NODES)
        self.checked()

    def set_policy(self, **options: Any) -> None:
        with self.sessions() as session:
            bin_ = queries.require_bin(session, "web")
            rollouts.set_policy(session, self.cache, bin_, None, make_policy(**options), self.now)

    def status(self) -> dict[str, Any]:
        with self.sessions() as session:
            return bin_status(session, self.ctx, queries.require_bin(session, "web"), self.now)

    def act(self, action: str) -> list[str]:
        with self.sessions() as session:
            bin_ = queries.require_bin(session, "web")
            return rollouts.act(session, self.cache, self.ctx, bin_, None, action, self.now)

    def waves(self) -> list[list[str]]:
        rollout = self.status()["rollouts"][0]
        return [[node["name"] for node in wave["nodes"]] for wave in rollout["waves"]]


@pytest.fixture
def fleet(tmp_path: Path, sessions: sessionmaker[Session]) -> Fleet:
    fleet = Fleet(tmp_path, sessions)
    for name in NODES:
        fleet.register(name)
    fleet.v1 = fleet.publish(b"v1")  # type: ignore[attr-defined]
    for name in NODES:
        fleet.running(name, fleet.v1)  # type: ignore[attr-defined]
    fleet.set_policy(canary="1", waves="50%,100%", bake=BAKE, max_failures="1")
    return fleet


def test_only_the_canary_is_told_a_new_release_until_its_bake_ends(fleet: Fleet) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    canary, wave1, wave2 = fleet.waves()
    assert [len(canary), len(wave1), len(wave2)] == [1, 2, 3]
    assert {name: fleet.told(name) for name in NODES} == {
        name: v2 if name in canary else v1 for name in NODES
    }
    fleet.progress(canary[0], v2, "success")
    fleet.running(canary[0], v2)
    fleet.check(BAKE - 1)
    assert fleet.told(wave1[0]) == v1  # one second of bake left
    fleet.check(1)
    assert [fleet.told(name) for name in wave1] == [v2, v2]
    assert [fleet.told(name) for name in wave2] == [v1, v1, v1]
    for name in wave1:
        fleet.running(name, v2)
    fleet.check(BAKE)
    assert fleet.told(wave2[0]) == v2
    for name in wave2:
        fleet.running(name, v2)
    fleet.check(BAKE)
    assert fleet.status()["state"] == "completed"
    assert [event for event, _ in fleet.notified] == [
        "rollout-started",
        "wave-promoted",
        "wave-promoted",
        "rollout-completed",
    ]


def test_a_failing_canary_halts_and_reverts_and_the_release_is_refused_again(
    fleet: Fleet,
) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.progress(canary, v2, "failed", "exited at start")
    fleet.check(1)
    status = fleet.status()
    assert status["state"] == "halted"
    assert status["rollouts"][0]["reverted"] is True
    assert "1 of 1 nodes of the canary failed" in status["rollouts"][0]["reason"]
    assert "exited at start" in status["rollouts"][0]["reason"]
    assert {fleet.told(name) for name in NODES} == {v1}
    with pytest.raises(Conflict, match="was reverted fleet-wide as bad"):
        fleet.publish(b"v2")
    events = [event for event, _ in fleet.notified]
    assert events[-3:] == ["node-rollback", "rollout-halted", "rollout-reverted"]
    fleet.act("resume")  # re-enabled: the canary is told it again, its failure forgiven
    assert fleet.told(canary) == v2
    assert fleet.status()["state"] == "rolling"


def test_the_inspector_rolling_back_during_the_bake_counts_as_a_failure(fleet: Fleet) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    fleet.check(10)
    fleet.running(canary, v1)  # rolled back by the inspector (or a person)
    fleet.check(1)
    assert fleet.status()["state"] == "halted"
    assert "went back to" in fleet.status()["rollouts"][0]["reason"]


def test_reports_of_a_node_whose_wave_has_not_started_do_not_count(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary, wave1, _ = fleet.waves()
    fleet.progress(wave1[0], v2, "failed")  # not told it: not this rollout's failure
    fleet.check(1)
    assert fleet.status()["state"] == "rolling"
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    assert fleet.status()["rollouts"][0]["wave"] == 1


def test_a_silent_member_fails_and_an_offline_one_does_not_block(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary, wave1, _ = fleet.waves()
    fleet.running(canary[0], v2)
    # wave 1's first node goes quiet well before its wave starts: offline, not blocking
    fleet.wait(200)
    fleet.seen(*(name for name in NODES if name != wave1[0]))
    fleet.checked()
    nodes = {
        node["name"]: node["state"] for node in fleet.status()["rollouts"][0]["waves"][1]["nodes"]
    }
    assert nodes[wave1[0]] == "offline"
    fleet.running(wave1[1], v2)
    fleet.wait(BAKE)
    fleet.seen(*(name for name in NODES if name != wave1[0]))
    fleet.checked()
    assert fleet.status()["rollouts"][0]["wave"] == 2
    assert fleet.told(wave1[0]) == v2  # told when it comes back


def test_operator_commands_and_a_pin(fleet: Fleet) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    canary, wave1, wave2 = fleet.waves()
    assert fleet.act("promote") == [f"web (x86_64) {v2[:12]}: wave 1 started"]
    assert fleet.told(wave1[0]) == v2
    fleet.act("halt")
    with pytest.raises(Conflict, match="only a rolling rollout is promoted"):
        fleet.act("promote")
    fleet.check(10 * BAKE)
    assert fleet.told(wave2[0]) == v1  # halted: no further wave
    fleet.act("abort")
    assert {fleet.told(name) for name in NODES} == {v1}
    with sessions_of(fleet) as session:
        kinds = list(session.scalars(select(Event.kind).order_by(Event.id)))
    steps = [kind for kind in kinds if kind.startswith("rollout-") and kind != "rollout-policy"]
    assert steps == ["rollout-start", "rollout-promote", "rollout-halt", "rollout-revert"]
    v3 = fleet.publish(b"v3")  # a later publish starts a new rollout from the canary
    assert fleet.told(canary[0]) == v3
    assert fleet.told(wave1[0]) == v1
    with sessions_of(fleet) as session:
        bin_ = queries.require_bin(session, "web")
        releases.pin(session, fleet.cache, bin_, ARCH, v3, fleet.now, fleet.ctx)
    assert {fleet.told(name) for name in NODES} == {v3}  # a pin: every node at once
    assert fleet.status()["rollouts"][0]["state"] == "superseded"


def test_two_processes_checking_promote_a_wave_once(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    fleet.wait(BAKE)
    fleet.seen(*NODES)
    with fleet.sessions() as first, fleet.sessions() as second:
        one = first.scalars(select(Rollout)).one()
        two = second.scalars(select(Rollout)).one()
        bin_one = queries.require_bin(first, "web")
        bin_two = queries.require_bin(second, "web")
        assert engine.check_rollout(first, fleet.ctx, one, bin_one, fleet.now) == "promoted"
        first.commit()
        assert engine.check_rollout(second, fleet.ctx, two, bin_two, fleet.now) is None
        second.rollback()
    assert fleet.status()["rollouts"][0]["wave"] == 1
    assert [event for event, _ in fleet.notified].count("wave-promoted") == 1


def sessions_of(fleet: Fleet) -> Session:
    return fleet.sessions()


def test_a_wave_of_offline_nodes_proved_nothing_and_waits(fleet: Fleet) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    fleet.wait(200)  # every node silent: the canary will be offline
    v2 = fleet.publish(b"v2")
    canary, wave1, _ = fleet.waves()
    assert fleet.status()["rollouts"][0]["waves"][0]["nodes"][0]["state"] == "offline"
    fleet.wait(10 * BAKE)
    fleet.checked()  # nobody called: nothing proved
    assert fleet.status()["rollouts"][0]["wave"] == 0
    assert fleet.told(wave1[0]) == v1
    assert fleet.told(canary[0]) == v2  # told when it comes back
    fleet.act("promote")  # an operator may move on anyway
    assert fleet.told(wave1[0]) == v2


def test_a_canary_that_could_not_try_the_release_is_not_its_failure(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.progress(canary, v2, "failed", "agent: download stalled", cause="host")
    fleet.check(10 * BAKE)
    rollout = fleet.status()["rollouts"][0]
    assert (rollout["state"], rollout["reverted"], rollout["wave"]) == ("rolling", False, 0)
    shown = rollout["waves"][0]
    assert (shown["failures"], shown["counts"]) == (0, {"host-trouble": 1})
    assert shown["nodes"][0]["reason"] == "agent: download stalled"
    assert fleet.told(canary) == v2  # it may try again; nothing is reverted or marked bad
    assert "node-rollback" not in [event for event, _ in fleet.notified]
    fleet.progress(canary, v2, "failed", "agent: download stalled", cause="host")  # a retry
    fleet.running(canary, v2)  # the host is fixed: it installs it after all, and bakes
    fleet.check(BAKE)
    assert fleet.status()["rollouts"][0]["wave"] == 1
    with sessions_of(fleet) as session:
        kinds = list(session.scalars(select(Event.kind).order_by(Event.id)))
    assert kinds.count("rollout-node-trouble") == 1  # a host retrying each tick: told once


def test_a_refusal_shows_as_one_and_a_report_without_a_cause_fails_the_release(
    fleet: Fleet,
) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.progress(canary, v2, "failed", "trust: signed by no trusted key", cause="refused")
    fleet.check(1)
    rollout = fleet.status()["rollouts"][0]
    assert (rollout["state"], rollout["waves"][0]["counts"]) == ("rolling", {"refused": 1})
    fleet.progress(canary, v2, "failed", "exited at start")  # no cause: the release's
    status = fleet.status()
    assert (status["state"], status["rollouts"][0]["reverted"]) == ("halted", True)


def test_a_resume_after_a_revert_does_not_count_the_revert_as_going_back(fleet: Fleet) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    canary, wave1, _ = fleet.waves()
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    for name in wave1:
        fleet.running(name, v2)
    fleet.progress(wave1[0], v2, "failed", "watch: exited")
    assert fleet.status()["rollouts"][0]["reverted"] is True
    fleet.running(wave1[1], v1)  # the server's revert, reported after the resume below
    fleet.act("resume")
    fleet.running(canary[0], v1)
    fleet.running(wave1[1], v1)
    assert fleet.status()["state"] == "rolling"
    for name in (*canary, *wave1):
        fleet.running(name, v2)  # told it again: each installs it again and bakes
    fleet.check(BAKE)
    assert fleet.status()["rollouts"][0]["wave"] == 2


def test_an_outage_is_no_node_s_silence(fleet: Fleet) -> None:
    v2 = fleet.publish(b"v2")
    canary = fleet.waves()[0][0]
    fleet.running(canary, v2)
    fleet.check(BAKE / 2)
    fleet.now += timedelta(seconds=600)  # the server is down: nobody vouches for this
    fleet.heard = HeardClock(1e6, clock=fleet._seconds, db_clock=lambda _: fleet._seconds())
    fleet.heard.advance(fleet.sessions)  # the restarted process: an outage, grace from here
    fleet.checked()
    assert fleet.status()["state"] == "rolling"
    assert fleet.status()["rollouts"][0]["waves"][0]["nodes"][0]["bakeRemaining"] == BAKE / 2
    fleet.wait(BAKE / 2)  # heard again (every node calls), the bake goes on from where it was
    fleet.seen(*NODES)
    fleet.checked()
    assert fleet.status()["rollouts"][0]["wave"] == 1
