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
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.engine import error_name, stored_now
from ansible_proxy.server.db.models import Bin, Node, Rollout, RolloutMember
from ansible_proxy.server.periodic import Periodic
from ansible_proxy.server.rollouts import eligible, heard, lifecycle, stored, stuck
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.heard import HeardClock
from ansible_proxy.server.rollouts.policy import Policy, failure_limit

log = logging.getLogger(__name__)


_M = RolloutMember


def _open(rollout: Rollout) -> ColumnElement[bool]:
    """Members of the current wave still to prove themselves (_waiting)."""
    return and_(_M.rollout_id == rollout.id, _M.wave == rollout.wave, _waiting(rollout))


def _waiting(rollout: Rollout) -> ColumnElement[bool]:
    """A member its wave waits for: not baked, not failed, no trouble; online when its wave
    began, or back since and running the release (then it bakes like the others); and
    taking part (eligible.judged: not forgotten, revoked or holding the bin)."""
    return and_(
        _M.failed_at.is_(None),
        _M.baked_at.is_(None),
        or_(_M.offline.is_(False), _M.succeeded_at.is_not(None)),
        _M.trouble.is_(None),
        eligible.judged(rollout),
    )


def _heard_since(moment: float) -> Select[str]:
    """The nodes heard at or after `moment` of the heard clock."""
    return select(Node.name).where(Node.heard >= moment)


def check_rollout(
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime
) -> str | None:
    """One check of a rolling rollout; what it changed ("promoted", "halted", "stuck"), or None.

    Marks silent members failed and healthy ones baked; a wave whose failures reach the
    policy's limit halts the rollout and reverts the fleet; a wave whose every online
    member stayed healthy for the bake time (and at least one did: a wave of offline
    nodes proved nothing) starts the next, unless the bin is paused; a wave that waited
    too long is told once (stuck.py). Times are the heard clock's: a member is
    silent when not heard for `silent_seconds` of it, and only once the wave's start and
    the last outage are that long ago. `now` (wall clock) only stamps what is recorded.
    Set-based: a check that changes nothing reads counts, not rows, however large the wave.
    """
    policy = stored.load_policy(rollout)
    bake = policy.bake_seconds
    clock = heard.read(session)
    if rollout.wave_heard is None:  # the wave started (or resumed) since the last check
        rollout.wave_heard = clock.now
    heard_after = clock.now - ctx.silent_seconds
    silent: list[str] = []
    if max(clock.grace_from, rollout.wave_heard) < heard_after:
        silent = list(
            session.scalars(
                select(_M.node_name).where(
                    _open(rollout), _M.node_name.not_in(_heard_since(heard_after))
                )
            )
        )
    why_silent = f"silent for over {ctx.silent_seconds:.0f} s during its bake"
    for name in silent:
        lifecycle.step(
            session, ctx, rollout, bin_.name, "rollout-node-failed", None,
            f"{name} failed: {why_silent}", now,
        )  # fmt: skip
    if silent:
        session.execute(
            update(_M)
            .where(_open(rollout), _M.node_name.in_(silent))
            .values(failed_at=now, reason=why_silent)
            .execution_options(synchronize_session=False)
        )
    # A bake counts from the first check after the member's success (never earlier), and
    # ends only for a member heard since the last outage (it may have died during it).
    session.execute(
        update(_M)
        .where(
            _M.rollout_id == rollout.id,
            _M.succeeded_at.is_not(None),
            _M.succeeded_heard.is_(None),
        )
        .values(succeeded_heard=clock.now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(_M)
        .where(
            _open(rollout),
            _M.succeeded_at.is_not(None),
            _M.succeeded_heard <= clock.now - bake,
            _M.node_name.in_(_heard_since(max(heard_after, clock.grace_from))),
        )
        .values(baked_at=now)
        .execution_options(synchronize_session=False)
    )
    waiting = case((_waiting(rollout), 1), else_=0)
    baked = case((_M.baked_at.is_not(None), 1), else_=0)
    counts = session.execute(
        select(_M.wave, func.count(), func.count(_M.failed_at), func.sum(waiting), func.sum(baked))
        .where(_M.rollout_id == rollout.id, _M.wave <= rollout.wave)
        .group_by(_M.wave)
        .order_by(_M.wave)
    ).all()
    for index, size, failed, _, _ in counts:
        if failed >= failure_limit(policy, size):
            if not lifecycle.claim(session, rollout, now):
                return None
            lifecycle.halt(
                session,
                ctx,
                rollout,
                bin_,
                now,
                _halt_reason(session, rollout, policy, index, size, failed),
                revert=True,
            )
            return "halted"
    current = next((row for row in counts if row[0] == rollout.wave), None)
    proved = current is not None and current[3] == 0 and current[4] > 0
    if proved and not bin_.paused and rollout.wave_heard + bake <= clock.now:
        if not lifecycle.claim(session, rollout, now):
            return None
        why = f"{wave_name(rollout.wave)} stayed healthy for {policy.bake_seconds} s"
        lifecycle.start_wave(session, ctx, rollout, bin_.name, now, why)
        return "promoted"
    return stuck.notice(session, ctx, rollout, bin_, now)


def _halt_reason(
    session: Session, rollout: Rollout, policy: Policy, wave: int, size: int, failed: int
) -> str:
    """`N of M nodes of <wave> failed (--max-failures X): a (why); b (why); and K more`."""
    first = session.execute(
        select(_M.node_name, _M.reason)
        .where(_M.rollout_id == rollout.id, _M.wave == wave, _M.failed_at.is_not(None))
        .order_by(_M.failed_at, _M.node_name)
        .limit(3)
    ).all()
    shown = "; ".join(f"{name} ({reason})" if reason else name for name, reason in first)
    if failed > len(first):
        shown += f"; and {failed - len(first)} more"
    return (
        f"{failed} of {size} nodes of {wave_name(wave)} failed "
        f"(--max-failures {policy.max_failures}): {shown}"
    )


def check_all(sessions: sessionmaker[Session], ctx: Context, now: datetime) -> bool:
    """Check every rolling rollout, each in its own transaction; True when one changed.

    The caller advanced the heard clock first (RolloutChecker), or a test set it.
    """
    with sessions() as session:
        ids = list(session.scalars(select(Rollout.id).where(Rollout.state == "rolling")))
    changed = False
    for rollout_id in ids:
        with sessions() as session:
            rollout = session.get(Rollout, rollout_id)
            if rollout is None or rollout.state != "rolling":
                continue
            bin_ = session.get(Bin, rollout.bin_id)
            if bin_ is None:
                continue
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
