"""The emergency path (issue 29.6), on a real SQLite database with the clock given (the
Fleet of test_lifecycle.py): `rollout revert` tells every node the last completed release
at once, whatever the rollout is doing, marks the release bad, and says why."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Event
from ansible_proxy.server.problems import Conflict
from ansible_proxy.server.rollouts.policy import IMMEDIATE
from ansible_proxy.server.services import rollouts
from tests.unit.server.rollouts.test_lifecycle import ARCH, BAKE, NODES, Fleet, fleet

__all__ = ["fleet"]


def revert(fleet: Fleet, reason: str = "error rate up") -> list[str]:
    with fleet.sessions() as session:
        bin_ = queries.require_bin(session, "web")
        done = rollouts.revert(session, fleet.cache, fleet.ctx, bin_, None, reason, fleet.now)
    fleet.cache.clear()
    return done


def steps(fleet: Fleet) -> list[tuple[str, str]]:
    with fleet.sessions() as session:
        rows = session.execute(select(Event.kind, Event.detail).order_by(Event.id)).all()
    return [(kind, detail or "") for kind, detail in rows if kind.startswith("rollout-")]


def rollout(fleet: Fleet) -> dict[str, Any]:
    found: dict[str, Any] = fleet.status()["rollouts"][0]
    return found


def test_a_revert_during_the_canary_tells_every_node_the_previous_release_at_once(
    fleet: Fleet,
) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    fleet.running(fleet.waves()[0][0], v2)  # the canary baking: no bake is waited for
    assert revert(fleet) == [
        f"web ({ARCH}): reverted at once: every node is told {v1[:12]} again, "
        f"{v2[:12]} is marked bad (error rate up)"
    ]
    assert {fleet.told(name) for name in NODES} == {v1}
    found = rollout(fleet)
    assert (found["state"], found["reverted"]) == ("halted", True)
    assert found["reason"] == "reverted at once by an operator: error rate up"
    assert ("rollout-halt", "halted: reverted at once by an operator: error rate up") in steps(
        fleet
    )
    with pytest.raises(Conflict, match="was reverted fleet-wide as bad"):
        fleet.publish(b"v2")


def test_a_revert_after_every_wave_goes_back_to_the_last_completed_release(
    fleet: Fleet,
) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    for wave in fleet.waves():
        for name in wave:
            fleet.running(name, v2)
        fleet.check(BAKE)
    assert rollout(fleet)["state"] == "completed"
    assert {fleet.told(name) for name in NODES} == {v2}
    revert(fleet, "slow leak")
    assert {fleet.told(name) for name in NODES} == {v1}
    assert (rollout(fleet)["state"], rollout(fleet)["reverted"]) == ("halted", True)
    with pytest.raises(Conflict, match="no release before"):
        revert(fleet)  # v1 was the first release: nothing before it


def test_without_a_rollout_the_release_before_is_told_and_a_paused_bin_follows(
    fleet: Fleet,
) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    fleet.set_policy(immediate=True)
    fleet.ctx = type(fleet.ctx)(default_policy=IMMEDIATE, silent_seconds=180)
    v2 = fleet.publish(b"v2")
    assert {fleet.told(name) for name in NODES} == {v2}
    with fleet.sessions() as session:
        queries.set_paused(session, queries.require_bin(session, "web"), True, fleet.now)
        session.commit()
    for name in NODES:
        fleet.running(name, v2)  # paused: each node is told what it runs
    assert revert(fleet, "bad config")[0].endswith("; web was paused and is resumed")
    assert {fleet.told(name) for name in NODES} == {v1}
    assert steps(fleet)[-1] == (
        "rollout-revert",
        f"reverted at once by an operator: bad config: every node is told {v1[:12]} again; "
        f"{v2[:12]} is marked bad",
    )
