"""The background check of every rolling rollout: bake, promote, or halt and revert.

Every server process runs it each `rollout_interval_seconds`; the decisions are made from
the database alone (members' reports, the heard clock and each node's heard time), so
whichever process checks first decides the same, and `lifecycle.claim` lets only one of
them write it. Silence and bakes are measured on the heard clock (heard.py), never on the
wall clock: a server that was down, a database away or locked, a stepped clock or a
replica whose clock is off is no node's silence and does not shorten a bake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.engine import error_name, stored_now
from ansible_proxy.server.db.models import Bin, Rollout, RolloutMember
from ansible_proxy.server.periodic import Periodic
from ansible_proxy.server.rollouts import (
    calendar,
    counts,
    heard,
    lifecycle,
    offline,
    stored,
    stuck,
    watch,
)
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.heard import HeardClock
from ansible_proxy.server.rollouts.judge import judge
from ansible_proxy.server.rollouts.policy import Policy

log = logging.getLogger(__name__)


_M = RolloutMember
CHECKED = ("rolling", watch.WATCHING)  # the states the background check judges


def check_rollout(
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime
) -> str | None:
    """One check of a rolling rollout; what it changed ("promoted", "halted", "stuck"), or None.

    Marks silent members offline and those heard again back (offline.py), healthy ones
    baked; judges each started wave by its counts (judge.py): failures reaching the
    policy's limit halt the rollout and revert the fleet; a current wave with nothing
    left to wait for, over no limit, and baked for the bake time starts the next, unless
    the bin is paused; a wave that waited too long is told once (stuck.py). Times are the
    heard clock's; `now` (wall clock) only stamps what is recorded. Set-based: a check
    that changes nothing reads counts, not rows, however large the wave.
    """
    policy = stored.load_policy(rollout)
    if rollout.wave < 0:  # no wave yet: the canary waits for its window or a freeze's end
        return _start_when_free(session, ctx, rollout, bin_, policy, now)
    bake = policy.bake_seconds
    clock = heard.read(session)
    if rollout.wave_heard is None:  # the wave started (or resumed) since the last check
        rollout.wave_heard = clock.now
    offline.update_offline(session, ctx, rollout, bin_.name, clock, now)
    heard_after = clock.now - ctx.silent_seconds
    # A bake counts from the first check after the member's success while it is heard
    # (never earlier), and ends only for a member heard since the last outage (it may
    # have died during it).
    session.execute(
        update(_M)
        .where(
            _M.rollout_id == rollout.id,
            _M.succeeded_at.is_not(None),
            _M.succeeded_heard.is_(None),
            _M.offline.is_(False),
        )
        .values(succeeded_heard=clock.now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(_M)
        .where(
            _M.rollout_id == rollout.id,
            _M.wave == rollout.wave,
            counts.pending(rollout),
            _M.succeeded_at.is_not(None),
            _M.succeeded_heard <= clock.now - bake,
            _M.node_name.in_(offline.heard_since(max(heard_after, clock.grace_from))),
        )
        .values(baked_at=now)
        .execution_options(synchronize_session=False)
    )
    waves = counts.tallies(session, rollout)
    for index, tally in waves.items():
        judged = judge(policy, tally)
        if judged.verdict == "halt":
            if not lifecycle.claim(session, rollout, now):
                return None
            lifecycle.halt(
                session,
                ctx,
                rollout,
                bin_,
                now,
                counts.halt_reason(session, rollout, index, tally, policy),
                revert=True,
            )
            return "halted"
    current = waves.get(rollout.wave)
    proved = current is not None and judge(policy, current).verdict == "baked"
    if proved and not bin_.paused and rollout.wave_heard + bake <= clock.now:
        if calendar.held(session, rollout, policy, ctx.calendar()) is not None:
            return None  # its window is closed, or the fleet frozen: it waits, not stuck
        if not lifecycle.claim(session, rollout, now):
            return None
        why = f"{wave_name(rollout.wave)} stayed healthy for {policy.bake_seconds} s"
        lifecycle.start_wave(session, ctx, rollout, bin_.name, now, why)
        return "promoted"
    return stuck.notice(session, ctx, rollout, bin_, now)


def _start_when_free(
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, policy: Policy, now: datetime
) -> str | None:
    """Start the canary of a rollout that waited for its window or a freeze's end."""
    if bin_.paused or calendar.held(session, rollout, policy, ctx.calendar()) is not None:
        return None
    if not lifecycle.claim(session, rollout, now):
        return None
    why = "its window is open" if policy.windows else "the fleet is no longer frozen"
    lifecycle.start_wave(session, ctx, rollout, bin_.name, now, why)
    return "promoted"


def check_all(sessions: sessionmaker[Session], ctx: Context, now: datetime) -> bool:
    """Check every rolling or watched rollout, each in its own transaction; True when one
    changed.

    The caller advanced the heard clock first (RolloutChecker), or a test set it.
    """
    with sessions() as session:
        ids = list(session.scalars(select(Rollout.id).where(Rollout.state.in_(CHECKED))))
    changed = False
    for rollout_id in ids:
        with sessions() as session:
            rollout = session.get(Rollout, rollout_id)
            if rollout is None or rollout.state not in CHECKED:
                continue
            bin_ = session.get(Bin, rollout.bin_id)
            if bin_ is None:
                continue
            if rollout.state == watch.WATCHING:
                what = watch.check_watch(session, ctx, rollout, bin_, now)
            else:
                what = check_rollout(session, ctx, rollout, bin_, now)
            session.commit()
            if what is not None:
                log.info(
                    "rollout of %s %s (%s): %s",
                    bin_.name,
                    rollout.release_sha[:12],
                    rollout.arch,
                    what,
                )
                changed = True
    return changed


class RolloutChecker(Periodic):
    """Advances the heard clock, then runs check_all, every `interval` seconds in the app's
    event loop (lifespan). No check runs on a round whose advance failed."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ctx: Context,
        interval: float,
        on_change: Callable[[], None],
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.ctx = ctx
        self.interval = interval
        self.on_change = on_change
        self.heard = HeardClock(interval)

    def check_now(self) -> bool:
        self.heard.advance(self.sessions)
        changed = check_all(self.sessions, self.ctx, stored_now())
        if changed:
            self.on_change()
        return changed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await anyio.to_thread.run_sync(self.check_now)
            except SQLAlchemyError as exc:  # the database is away: the next round retries
                log.warning(
                    "rollout check failed (retried in %.0f s): %s", self.interval, error_name(exc)
                )
            except Exception:  # never let one bad rollout stop the checks of the others
                log.exception("rollout check failed")
