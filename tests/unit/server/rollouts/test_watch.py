"""Watch after 100 % (issue 29.3), on a real SQLite database with the clock given (the
Fleet of test_lifecycle.py): a rollout whose every wave was promoted stays `watching` for
its --watch on the heard clock; a failure of the release then halts it and reverts the
fleet as during the waves; after the watch it is `completed`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ansible_proxy.server.rollouts.heard import HeardClock
from ansible_proxy.server.rollouts.policy import (
    PolicyError,
    make_policy,
    parse_policy_text,
    policy_from_json,
    policy_to_json,
)
from tests.unit.server.rollouts.test_lifecycle import BAKE, NODES, Fleet, fleet

__all__ = ["fleet"]
WATCH = 3600


def rollout(fleet: Fleet) -> dict[str, Any]:
    found: dict[str, Any] = fleet.status()["rollouts"][0]
    return found


def through_the_waves(fleet: Fleet) -> str:
    """Publish v2 under a watched policy and walk it through every wave."""
    fleet.set_policy(canary="1", waves="50%,100%", bake=BAKE, max_failures="1", watch="1h")
    v2 = fleet.publish(b"v2")
    for wave in fleet.waves():
        for name in wave:
            fleet.running(name, v2)
        fleet.check(BAKE)
    return v2


def test_a_rollout_past_its_last_wave_is_watched_then_completed(fleet: Fleet) -> None:
    v2 = through_the_waves(fleet)
    found = rollout(fleet)
    assert found["state"] == "watching"
    assert fleet.status()["state"] == "watching"
    assert found["watch"]["seconds"] == WATCH
    assert found["watch"]["remaining"] == WATCH
    assert {fleet.told(name) for name in NODES} == {v2}  # every node is told the release
    fleet.check(WATCH - 1)
    assert rollout(fleet)["watch"]["remaining"] == 1
    fleet.check(1)
    found = rollout(fleet)
    assert (found["state"], found["watch"]) == ("completed", None)
    events = [event for event, _ in fleet.notified]
    assert events[-2:] == ["rollout-watching", "rollout-completed"]
    assert "watched for 1h after every wave" in fleet.notified[-1][1]


def test_a_failure_of_the_release_during_the_watch_halts_and_reverts_the_fleet(
    fleet: Fleet,
) -> None:
    v1 = fleet.v1  # type: ignore[attr-defined]
    v2 = through_the_waves(fleet)
    fleet.check(WATCH / 2)
    last = fleet.waves()[-1][0]
    fleet.progress(last, v2, "failed", "watch: exited after 30 min")  # a slow-burning bug
    fleet.check(1)
    found = rollout(fleet)
    assert (found["state"], found["reverted"]) == ("halted", True)
    assert found["reason"].startswith("during the watch after every wave: 1 of 3 nodes of wave 2")
    assert "watch: exited after 30 min" in found["reason"]
    assert {fleet.told(name) for name in NODES} == {v1}
    assert [event for event, _ in fleet.notified][-3:] == [
        "node-rollback", "rollout-halted", "rollout-reverted",
    ]  # fmt: skip


def test_host_trouble_and_silence_during_the_watch_revert_nothing(fleet: Fleet) -> None:
    v2 = through_the_waves(fleet)
    fleet.progress(fleet.waves()[0][0], v2, "failed", "a full store", cause="host")
    fleet.wait(WATCH)  # nobody heard the whole watch: silence is no failure
    fleet.checked()
    assert (rollout(fleet)["state"], rollout(fleet)["reverted"]) == ("completed", False)


def test_the_watch_counts_only_time_the_server_could_hear(fleet: Fleet) -> None:
    through_the_waves(fleet)
    fleet.check(WATCH / 2)
    fleet.now += timedelta(seconds=WATCH)  # the server is down: nobody vouches for this
    fleet.heard = HeardClock(1e6, clock=fleet._seconds, db_clock=lambda _: fleet._seconds())
    fleet.heard.advance(fleet.sessions)
    fleet.checked()
    assert rollout(fleet)["state"] == "watching"
    assert rollout(fleet)["watch"]["remaining"] == WATCH / 2


def test_promote_ends_the_watch_and_a_publish_supersedes_it(fleet: Fleet) -> None:
    v2 = through_the_waves(fleet)
    assert fleet.act("promote") == [f"web (x86_64) {v2[:12]}: completed"]
    assert rollout(fleet)["state"] == "completed"
    v3 = fleet.publish(b"v3")
    for wave in fleet.waves():
        for name in wave:
            fleet.running(name, v3)
        fleet.check(BAKE)
    assert rollout(fleet)["state"] == "watching"
    fleet.publish(b"v4")  # a publish during the watch ends it: a new rollout from v3
    status = fleet.status()
    assert rollout(fleet)["previous"] == v3
    assert status["rollouts"][0]["state"] == "rolling"


@pytest.mark.parametrize(
    ("given", "seconds", "words"),
    [("3600", 3600, "1h"), ("1h", 3600, "1h"), ("1h30m", 5400, "1h30m"), ("90s", 90, "1m30s"),
     ("2d", 172_800, "2d"), (600, 600, "10m")],
)  # fmt: skip
def test_the_watch_is_a_duration(given: str | int, seconds: int, words: str) -> None:
    policy = make_policy(canary="1", waves="100%", bake=0, max_failures="1", watch=given)
    assert policy.watch_seconds == seconds
    assert policy.describe().endswith(f" --watch {words}")
    assert policy_from_json(policy_to_json(policy)) == policy
    assert parse_policy_text(policy.describe()) == policy


@pytest.mark.parametrize("given", ["soon", "1x", "h", "1h1h", "-5", "8d", ""])
def test_a_bad_watch_is_named(given: str) -> None:
    with pytest.raises(PolicyError, match="--watch"):
        make_policy(canary="1", waves="100%", bake=0, max_failures="1", watch=given)
