"""The calendar of rollouts: when a wave may start, by the maintenance windows of its
policy (windows.py) and the fleet-wide freeze (`bin-manager freeze --until … --reason …`).

Both are judged on the server's calendar clock (`Context.calendar`): the machine's UTC
time, or — for tests and rehearsals — `BIN_MANAGER_CLOCK_START`, a moment the clock
starts from when the process starts and runs on from by the monotonic clock. Only the
start of a wave waits (the canary's too): a wave already started, a bake, a watch, a
halt and a revert never do, and `rollout promote` and `rollout revert` are an
operator's own choice, taken at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Event, FleetFreeze, Rollout, RolloutMember
from ansible_proxy.server.rollouts import eligible
from ansible_proxy.server.rollouts.options import PolicyError, parse_duration
from ansible_proxy.server.rollouts.policy import Policy

FREEZE_ROW = 1
MAX_FREEZE = timedelta(days=366)


def calendar_clock(start: datetime | None) -> Callable[[], datetime]:
    """The calendar clock: UTC now, or `start` (aware) advanced by this process's
    monotonic time since this call (BIN_MANAGER_CLOCK_START)."""
    if start is None:
        return lambda: datetime.now(UTC)
    origin = time.monotonic()
    return lambda: start.astimezone(UTC) + timedelta(seconds=time.monotonic() - origin)


@dataclass(frozen=True)
class Freeze:
    until: datetime  # aware, UTC
    reason: str

    def describe(self) -> str:
        return f"the fleet is frozen until {self.until:%Y-%m-%d %H:%M} UTC: {self.reason}"

    def shown(self) -> dict[str, str]:
        """{until, reason} as the API shows it (ISO 8601 UTC with a Z)."""
        until = self.until.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
        return {"until": until, "reason": self.reason}


def freeze_in_force(session: Session, now: datetime) -> Freeze | None:
    """The fleet-wide freeze when it holds at `now` (aware), else None."""
    row = session.get(FleetFreeze, FREEZE_ROW)
    if row is None:
        return None
    until = row.until.replace(tzinfo=UTC)
    return Freeze(until, row.reason) if until > now else None


def parse_until(text: str, now: datetime) -> datetime:
    """`--until`: a moment with its zone (`2026-12-27T00:00Z`, `…+01:00`) or a duration
    from `now` (`48h`, `2d`, `90m`); in the future, within a year. PolicyError otherwise."""
    raw = text.strip()
    bad = PolicyError(
        f"--until {raw!r:.40}: a moment like 2026-12-27T00:00Z, or a duration like 48h"
    )
    if raw[:1].isdigit() and ("T" in raw or "-" in raw[:5]):
        try:
            until = datetime.fromisoformat(raw)
        except ValueError:
            raise bad from None
        if until.tzinfo is None:
            raise PolicyError(f"--until {raw!r:.40}: give its zone (Z or +01:00)")
    else:
        try:
            seconds = parse_duration(raw, "--until", MAX_FREEZE)
        except PolicyError as exc:
            if "at most" in str(exc):
                raise
            raise bad from None
        until = now + timedelta(seconds=seconds)
    if until <= now:
        raise PolicyError(f"--until {raw!r:.40}: that is not in the future")
    if until - now > MAX_FREEZE:
        raise PolicyError(f"--until {raw!r:.40}: at most a year from now")
    return until.astimezone(UTC)


def set_freeze(session: Session, until: datetime, reason: str, now: datetime) -> Freeze:
    """Freeze the fleet until `until` (aware); replaces a freeze in force."""
    row = session.get(FleetFreeze, FREEZE_ROW) or FleetFreeze(id=FREEZE_ROW)
    row.until = until.astimezone(UTC).replace(tzinfo=None)
    row.reason = reason[:300]
    row.set_at = now
    session.add(row)
    found = Freeze(until.astimezone(UTC), reason[:300])
    session.add(Event(at=now, kind="freeze", bin_name="", arch=None, sha256=None,
                      detail=found.describe()[:300]))  # fmt: skip
    return found


def clear_freeze(session: Session, now: datetime) -> bool:
    """End the freeze; False when there was none."""
    row = session.get(FleetFreeze, FREEZE_ROW)
    if row is None:
        return False
    session.delete(row)
    session.add(Event(at=now, kind="unfreeze", bin_name="", arch=None, sha256=None,
                      detail=f"the freeze ({row.reason[:200]}) was ended"))  # fmt: skip
    return True


def held(session: Session, rollout: Rollout, policy: Policy, now: datetime) -> str | None:
    """Why the rollout's next wave may not start at `now` (aware): the freeze, or a window
    of the policy that applies to one of its nodes and is closed; None: it may."""
    upcoming = rollout.wave + 1
    if upcoming >= rollout.wave_count:
        return None  # completing starts no wave
    frozen = freeze_in_force(session, now)
    if frozen is not None:
        return frozen.describe()
    if not policy.windows:
        return None
    names = list(
        session.scalars(
            select(RolloutMember.node_name).where(
                RolloutMember.rollout_id == rollout.id, RolloutMember.wave == upcoming
            )
        )
    )
    labels = eligible.labels_of(session, names)
    return closed_window(policy, [labels.get(name, {}) for name in names], now)


def closed_window(policy: Policy, labels: list[dict[str, str]], now: datetime) -> str | None:
    """The first window that applies to one of the nodes (`labels` each) and is closed at
    `now`, in words with when it opens; None when every one is open."""
    for window in policy.windows:
        if window.is_open(now) or not any(window.applies_to(found) for found in labels):
            continue
        opens = window.next_open(now)
        return f"outside its window {window.text} (it opens {opens:%a %Y-%m-%d %H:%M %Z})"
    return None


def opens_for(policy: Policy, labels: list[dict[str, str]], after: datetime) -> datetime:
    """The first moment at or after `after` when every window that applies to one of the
    nodes is open at once (within a fortnight; else `after` is returned unchanged)."""
    moment = after
    for _ in range(64):  # each step moves to a window's opening: few steps
        closed = [
            window
            for window in policy.windows
            if any(window.applies_to(found) for found in labels) and not window.is_open(moment)
        ]
        if not closed:
            return moment
        moment = max(window.next_open(moment) for window in closed)
        if moment - after > timedelta(days=14):
            break
    return after
