"""What each wave's members count as (judge.py's Tally), in one grouped query: the engine
judges a wave by it and `rollout status` shows it, so the two never disagree.

A member counts as `failed` once the release failed on it, `healthy` once baked; a
skipped member (eligible.judged: forgotten, revoked, holding the bin) only in the wave's
size; of the others, `host_trouble` or `refused` by its trouble, `offline` while its
`offline` flag is up (offline.py keeps it), `baking` once it reported the release, and
`not_installed` until then.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from ansible_proxy.protocol import FailureCause
from ansible_proxy.server.db.models import Rollout, RolloutMember
from ansible_proxy.server.rollouts import eligible
from ansible_proxy.server.rollouts.context import wave_name
from ansible_proxy.server.rollouts.judge import Tally
from ansible_proxy.server.rollouts.policy import Policy

_M = RolloutMember


def pending(rollout: Rollout) -> ColumnElement[bool]:
    """SQL: a member its wave waits for (not_installed or baking): judged, neither failed
    nor baked, no trouble, not offline."""
    return and_(
        _M.failed_at.is_(None),
        _M.baked_at.is_(None),
        _M.trouble.is_(None),
        _M.offline.is_(False),
        eligible.judged(rollout),
    )


def tallies(session: Session, rollout: Rollout, upto: int | None = None) -> dict[int, Tally]:
    """wave index → its Tally, for the waves up to `upto` (default: the current one)."""
    last = rollout.wave if upto is None else upto
    open_ = and_(_M.failed_at.is_(None), _M.baked_at.is_(None), eligible.judged(rollout))

    def count(where: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((where, 1), else_=0)), 0)

    no_trouble = _M.trouble.is_(None)
    rows = session.execute(
        select(
            _M.wave,
            func.count(),
            func.count(_M.failed_at),
            count(and_(open_, _M.trouble == FailureCause.HOST)),
            count(and_(open_, _M.trouble == FailureCause.REFUSED)),
            count(and_(open_, no_trouble, _M.offline.is_(True))),
            count(and_(open_, no_trouble, _M.offline.is_(False), _M.succeeded_at.is_not(None))),
            count(and_(open_, no_trouble, _M.offline.is_(False), _M.succeeded_at.is_(None))),
            count(and_(_M.failed_at.is_(None), _M.baked_at.is_not(None))),
        )
        .where(_M.rollout_id == rollout.id, _M.wave <= last)
        .group_by(_M.wave)
        .order_by(_M.wave)
    ).all()
    return {
        int(wave): Tally(
            size=int(size),
            failed=int(failed),
            host_trouble=int(host),
            refused=int(refused),
            offline=int(offline),
            baking=int(baking),
            not_installed=int(waiting),
            healthy=int(healthy),
        )
        for wave, size, failed, host, refused, offline, baking, waiting, healthy in rows
    }


def halt_reason(session: Session, rollout: Rollout, wave: int, tally: Tally, policy: Policy) -> str:
    """`N of M nodes of <wave> failed (--max-failures X): a (why); b (why); and K more`."""
    first = session.execute(
        select(_M.node_name, _M.reason)
        .where(_M.rollout_id == rollout.id, _M.wave == wave, _M.failed_at.is_not(None))
        .order_by(_M.failed_at, _M.node_name)
        .limit(3)
    ).all()
    shown = "; ".join(f"{name} ({reason})" if reason else name for name, reason in first)
    if tally.failed > len(first):
        shown += f"; and {tally.failed - len(first)} more"
    return (
        f"{tally.failed} of {tally.size} nodes of {wave_name(wave)} failed "
        f"(--max-failures {policy.max_failures}): {shown}"
    )
