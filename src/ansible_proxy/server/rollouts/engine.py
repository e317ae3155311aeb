"""The background check of every rolling rollout: bake, promote, or halt and revert.

Every server process runs it each `rollout_interval_seconds`; the decisions are made from
the database alone (members' reports, nodes' last seen, the clock), so whichever process
checks first decides the same, and `lifecycle.claim` lets only one of them write it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.engine import error_name, stored_now
from ansible_proxy.server.db.models import Bin, Node, Rollout, RolloutMember
from ansible_proxy.server.periodic import Periodic
from ansible_proxy.server.rollouts import lifecycle
from ansible_proxy.server.rollouts.lifecycle import Context, wave_name
from ansible_proxy.server.rollouts.policy import failure_limit

log = logging.getLogger(__name__)


@dataclass
class _Wave:
    size: int = 0
    failed: list[str] = field(default_factory=list)
    waiting: int = 0  # not yet healthy for the bake time, and not offline


def check_rollout(
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime
) -> str | None:
    """One check of a rolling rollout; what it changed ("promoted", "halted"), or None.

    Marks silent members failed and healthy ones baked; a wave whose failures reach the
    policy's limit halts the rollout and reverts the fleet; a wave whose every online
    member stayed healthy for the bake time starts the next.
    """
    policy = lifecycle.load_policy(rollout)
    bake = timedelta(seconds=policy.bake_seconds)
    silent_before = now - timedelta(seconds=ctx.silent_seconds)
    rows = session.execute(
        select(RolloutMember, Node.last_seen)
        .outerjoin(Node, Node.name == RolloutMember.node_name)
        .where(RolloutMember.rollout_id == rollout.id, RolloutMember.wave <= rollout.wave)
    ).all()
    waves: dict[int, _Wave] = {}
    for member, seen in rows:
        wave = waves.setdefault(member.wave, _Wave())
        wave.size += 1
        silent = seen is None or seen < silent_before
        if member.failed_at is None and member.baked_at is None and not member.offline:
            if member.wave == rollout.wave and silent:
                member.failed_at = now
                member.reason = f"silent for over {ctx.silent_seconds:.0f} s during its bake"
                lifecycle.step(
                    session, ctx, rollout, bin_.name, "rollout-node-failed", None,
                    f"{member.node_name} failed: {member.reason}", now,
                )  # fmt: skip
            elif member.succeeded_at is not None and member.succeeded_at + bake <= now:
                member.baked_at = now
        if member.failed_at is not None:
            wave.failed.append(
                f"{member.node_name} ({member.reason})" if member.reason else member.node_name
            )
        elif member.baked_at is None and not member.offline:
            wave.waiting += 1
    for index in sorted(waves):
        wave = waves[index]
        limit = failure_limit(policy, wave.size)
        if len(wave.failed) >= limit:
            if not lifecycle.claim(session, rollout, now):
                return None
            shown = "; ".join(wave.failed[:3]) + (
                f"; and {len(wave.failed) - 3} more" if len(wave.failed) > 3 else ""
            )
            reason = (
                f"{len(wave.failed)} of {wave.size} nodes of {wave_name(index)} failed "
                f"(--max-failures {policy.max_failures}): {shown}"
            )
            lifecycle.halt(session, ctx, rollout, bin_, now, reason, revert=True)
            return "halted"
    current = waves.get(rollout.wave, _Wave())
    if current.waiting == 0 and rollout.wave_started_at + bake <= now:
        if not lifecycle.claim(session, rollout, now):
            return None
        why = f"{wave_name(rollout.wave)} stayed healthy for {policy.bake_seconds} s"
        lifecycle.start_wave(session, ctx, rollout, bin_.name, now, why)
        return "promoted"
    return None


def check_all(sessions: sessionmaker[Session], ctx: Context, now: datetime) -> bool:
    """Check every rolling rollout, each in its own transaction; True when one changed."""
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
    """Runs check_all every `interval` seconds in the app's event loop (lifespan)."""

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

    def check_now(self) -> bool:
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
