"""Maintenance windows and the fleet-wide freeze (issue 29.1), on a real SQLite database,
the server's calendar clock given (the Fleet of test_lifecycle.py): a wave starts only in
its window (the canary too) and never while the fleet is frozen; it waits and says so,
never "stuck"; the plan counts it; `rollout revert` and `rollout promote` are not held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.labels import set_admin_labels
from ansible_proxy.server.problems import BadRequest
from ansible_proxy.server.rollouts.calendar import parse_until
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.options import PolicyError
from ansible_proxy.server.rollouts.planning import plan_view
from ansible_proxy.server.rollouts.policy import IMMEDIATE
from ansible_proxy.server.services import rollouts
from tests.unit.server.rollouts.test_lifecycle import BAKE, NODES, Fleet, fleet

__all__ = ["fleet"]
MONDAY_EARLY = datetime(2026, 12, 21, 7, 0, tzinfo=UTC)  # 08:00 in Berlin, a Monday
WINDOW = "Mon-Fri 09:00-17:00 Europe/Berlin"


class Calendar:
    """The server's calendar clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def calendar(fleet: Fleet) -> Calendar:
    clock = Calendar(MONDAY_EARLY)
    fleet.ctx = Context(
        default_policy=IMMEDIATE, silent_seconds=180, notify=fleet.ctx.notify,
        stuck_seconds=600, calendar=clock,
    )  # fmt: skip
    return clock


def rollout(fleet: Fleet) -> dict[str, Any]:
    found: dict[str, Any] = fleet.status()["rollouts"][0]
    return found


def test_waves_start_only_in_their_window_the_canary_too(fleet: Fleet, calendar: Calendar) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    fleet.set_policy(canary="1", waves="50%,100%", bake=BAKE, max_failures="1", window=WINDOW)
    v2 = fleet.publish(b"v2")
    found = rollout(fleet)
    assert (found["state"], found["wave"]) == ("rolling", -1)
    assert found["held"] == (
        "outside its window Mon-Fri 09:00-17:00 Europe/Berlin (it opens Mon 2026-12-21 09:00 CET)"
    )
    assert {fleet.told(name) for name in NODES} == {v1}  # nobody, not even the canary
    fleet.check(3600)  # an hour later by the heard clock; the calendar still says 08:00
    assert rollout(fleet)["wave"] == -1
    assert "rollout-stuck" not in [event for event, _ in fleet.notified]  # waiting, not stuck

    calendar.now += timedelta(hours=1)  # 09:00 in Berlin: the window opens
    fleet.checked()
    canary, wave1, _ = fleet.waves()
    assert (rollout(fleet)["wave"], fleet.told(canary[0])) == (0, v2)
    fleet.running(canary[0], v2)
    calendar.now += timedelta(hours=8)  # 17:00: closed again before the canary baked
    fleet.check(BAKE)
    found = rollout(fleet)
    assert (found["wave"], found["held"][:27]) == (0, "outside its window Mon-Fri ")
    assert fleet.told(wave1[0]) == v1
    calendar.now += timedelta(hours=16)  # Tuesday 09:00
    fleet.checked()
    assert rollout(fleet)["wave"] == 1
    assert fleet.told(wave1[0]) == v2


def test_a_window_for_one_label_holds_only_the_waves_with_such_a_node(
    fleet: Fleet, calendar: Calendar
) -> None:
    fleet.set_policy(canary="1", waves="100%", bake=BAKE, max_failures="1",
                     window="cluster=eu: Mon-Fri 09:00-17:00 Europe/Berlin")  # fmt: skip
    v2 = fleet.publish(b"v2")
    canary, rest = fleet.waves()
    assert rollout(fleet)["wave"] == 0  # no eu node in the canary: it starts at the publish
    with fleet.sessions() as session:
        set_admin_labels(session, rest[0], {"cluster": "eu"}, fleet.now)
        session.commit()
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    assert rollout(fleet)["wave"] == 0
    assert rollout(fleet)["held"].startswith("outside its window cluster=eu: Mon-Fri")
    calendar.now += timedelta(hours=1)
    fleet.checked()
    assert rollout(fleet)["wave"] == 1


def test_a_freeze_holds_every_wave_shows_why_and_ends(fleet: Fleet, calendar: Calendar) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = fleet.publish(b"v2")
    canary, wave1, _ = fleet.waves()
    with fleet.sessions() as session:
        frozen = rollouts.freeze(session, fleet.ctx, "48h", "year-end freeze", fleet.now)
    assert frozen.until == MONDAY_EARLY + timedelta(hours=48)
    fleet.running(canary[0], v2)
    fleet.check(BAKE)
    status = fleet.status()
    assert status["freeze"] == {"until": "2026-12-23T07:00:00Z", "reason": "year-end freeze"}
    assert status["rollouts"][0]["held"] == (
        "the fleet is frozen until 2026-12-23 07:00 UTC: year-end freeze"
    )
    assert (status["rollouts"][0]["wave"], fleet.told(wave1[0])) == (0, v1)
    with fleet.sessions() as session:
        shown = plan_view(session, fleet.ctx, queries.require_bin(session, "web"), None, fleet.now)
    assert shown["plans"][0]["waves"][0]["earliestSeconds"] == 48 * 3600
    assert shown["plans"][0]["freeze"]["reason"] == "year-end freeze"

    calendar.now += timedelta(hours=48)  # the freeze ran out
    fleet.checked()
    assert rollout(fleet)["wave"] == 1
    assert fleet.status()["freeze"] is None


def test_unfreeze_lets_held_waves_start_and_a_revert_is_never_held(
    fleet: Fleet, calendar: Calendar
) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    fleet.set_policy(canary="1", waves="100%", bake=BAKE, max_failures="1", window=WINDOW)
    with fleet.sessions() as session:
        rollouts.freeze(session, fleet.ctx, "2026-12-24T00:00Z", "holidays", fleet.now)
    v2 = fleet.publish(b"v2")
    assert rollout(fleet)["held"].startswith("the fleet is frozen until 2026-12-24 00:00 UTC")
    with fleet.sessions() as session:
        assert rollouts.unfreeze(session, fleet.now) is True
    assert rollout(fleet)["held"].startswith("outside its window")  # and then its window
    calendar.now += timedelta(hours=1)
    fleet.checked()
    assert fleet.told(fleet.waves()[0][0]) == v2
    with fleet.sessions() as session:
        rollouts.freeze(session, fleet.ctx, "1h", "incident", fleet.now)
        bin_ = queries.require_bin(session, "web")
        rollouts.revert(session, fleet.cache, fleet.ctx, bin_, None, "bad", fleet.now)
    fleet.cache.clear()
    assert {fleet.told(name) for name in NODES} == {v1}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("2026-12-20T00:00Z", "not in the future"),
        ("2026-12-24T00:00", "give its zone"),
        ("soon", "a moment like 2026-12-27T00:00Z, or a duration like 48h"),
        ("400d", "at most 366 days"),
    ],
)
def test_a_bad_until_is_named(given: str, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_until(given, MONDAY_EARLY)
    assert message in str(refused.value)
    assert parse_until("2026-12-24T00:00+01:00", MONDAY_EARLY) == datetime(
        2026, 12, 23, 23, 0, tzinfo=UTC
    )


def test_a_bad_freeze_changes_nothing(fleet: Fleet, calendar: Calendar) -> None:
    with fleet.sessions() as session, pytest.raises(BadRequest, match="not in the future"):
        rollouts.freeze(session, fleet.ctx, "2020-01-01T00:00Z", "x", fleet.now)
    assert fleet.status()["freeze"] is None
