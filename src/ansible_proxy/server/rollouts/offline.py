"""Who is offline in a rollout: each check marks the current wave's members not heard for
the silent window offline, and the members heard again back.

Offline is not failed: a node that never polled, or went silent during its bake, says
nothing about the release (it may be switched off, or its network down). It counts
apart (judge.py: over `--max-offline` the wave waits, it never halts nor reverts), and
it is not healthy: its bake ends only once it is back, and starts again then, since it
may have been restarted meanwhile. Silence is measured on the heard clock (heard.py):
only once the wave's start and the last outage are a whole silent window ago.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, case, select, update
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Node, Rollout, RolloutMember
from ansible_proxy.server.rollouts import counts, lifecycle
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.heard import Heard

_M = RolloutMember


def heard_since(moment: float) -> Select[str]:
    """The nodes heard at or after `moment` of the heard clock."""
    return select(Node.name).where(Node.heard >= moment)


def update_offline(
    session: Session, ctx: Context, rollout: Rollout, bin_name: str, clock: Heard, now: datetime
) -> list[str]:
    """Mark the current wave's silent members offline (their bake to start again once
    back) and the started waves' offline members heard again back; the newly offline."""
    heard_after = clock.now - ctx.silent_seconds
    started = and_(_M.rollout_id == rollout.id, _M.wave <= rollout.wave)
    back = _M.node_name.in_(heard_since(heard_after))
    session.execute(
        update(_M)
        .where(started, _M.offline.is_(True), _M.failed_at.is_(None), back)
        .values(offline=False, reason=case((_M.trouble.is_(None), None), else_=_M.reason))
        .execution_options(synchronize_session=False)
    )
    assert rollout.wave_heard is not None
    if max(clock.grace_from, rollout.wave_heard) >= heard_after:
        return []  # not a whole silent window since the wave began or the last outage
    this_wave = and_(_M.rollout_id == rollout.id, _M.wave == rollout.wave)
    silent_now = and_(
        this_wave, counts.pending(rollout), _M.node_name.not_in(heard_since(heard_after))
    )
    rows = session.execute(select(_M.node_name, _M.succeeded_at).where(silent_now)).all()
    for name, succeeded in rows:
        during = "during its bake" if succeeded is not None else "since it was told the release"
        lifecycle.step(
            session, ctx, rollout, bin_name, "rollout-node-offline", None,
            f"{name} offline: not heard for over {ctx.silent_seconds:.0f} s {during} "
            "(counted offline, not failed; its bake starts again once it is back)", now,
        )  # fmt: skip
    if rows:
        why = f"offline: not heard for over {ctx.silent_seconds:.0f} s of its wave"
        session.execute(
            update(_M)
            .where(silent_now)
            .values(offline=True, succeeded_heard=None, reason=why)
            .execution_options(synchronize_session=False)
        )
    return [name for name, _ in rows]
