"""After 100 %: a rollout whose every wave was promoted stays `watching` for its policy's
`--watch` (on the heard clock, so an outage of the server does not count as watched),
and is judged as during its waves: a wave whose failures of the release reach
`--max-failures` halts it and reverts the fleet. Then it is `completed`.

During the watch every node is told the release (it is the latest; `watching` is no
answering state, db/queries.ROLLOUT_ANSWERING), its members' reports still count
(members.py), and silence is not judged: an offline node is no bad release.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Bin, Rollout
from ansible_proxy.server.rollouts import counts, heard, lifecycle, stored
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.judge import judge
from ansible_proxy.server.rollouts.options import format_duration

WATCHING = "watching"


def check_watch(
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime
) -> str | None:
    """One check of a watched rollout: "halted" (a wave's failures reached the limit),
    "completed" (watched long enough), or None."""
    policy = stored.load_policy(rollout)
    clock = heard.read(session)
    if rollout.wave_heard is None:  # the watch began since the last check
        rollout.wave_heard = clock.now
    for index, tally in counts.tallies(session, rollout, rollout.wave_count - 1).items():
        if judge(policy, tally).verdict == "halt":
            if not lifecycle.claim(session, rollout, now):
                return None
            why = counts.halt_reason(session, rollout, index, tally, policy)
            reason = f"during the watch after every wave: {why}"
            lifecycle.halt(session, ctx, rollout, bin_, now, reason, revert=True)
            return "halted"
    if rollout.wave_heard + policy.watch_seconds <= clock.now:
        if not lifecycle.claim(session, rollout, now):
            return None
        watched = format_duration(policy.watch_seconds)
        lifecycle.complete(
            session, ctx, rollout, bin_.name, now, f"watched for {watched} after every wave"
        )
        return "completed"
    return None


def watch_view(session: Session, rollout: Rollout) -> dict[str, Any] | None:
    """{seconds, remaining, text} while the rollout is watched, else None (`rollout status`)."""
    if rollout.state != WATCHING:
        return None
    seconds = stored.load_policy(rollout).watch_seconds
    began = rollout.wave_heard
    watched = 0.0 if began is None else heard.read(session).now - began
    remaining = max(0, math.ceil(seconds - watched))
    return {
        "seconds": seconds,
        "remaining": remaining,
        "text": (
            f"watched after every wave for {format_duration(seconds)}: "
            f"{format_duration(remaining)} left; a failure of the release meanwhile halts "
            "it and reverts the fleet"
        ),
    }
