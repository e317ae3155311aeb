"""A rollout that does not move: its current wave has waited longer than its bake and
`stuck_seconds` more (a node that never comes back, one that never reports, more nodes
offline or refusing than `--max-offline` or `--max-refused` allow). It is not halted,
since nothing failed; an operator is told once per wave (`rollout-stuck`, a step
and a webhook) and `rollout status` and the dashboard say what it waits on. A paused bin
is not stuck: it waits for its operator's resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.listings import iso
from ansible_proxy.server.db.models import Bin, Node, Rollout, RolloutMember
from ansible_proxy.server.rollouts import counts, eligible, lifecycle, stored
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.judge import judge

_M = RolloutMember
SHOWN = 5


@dataclass(frozen=True)
class Waiting:
    """What a wave waits on: the first members with what they are doing, and how many."""

    nodes: tuple[tuple[str, str], ...]  # (name, "offline since …" | "upgrading" | "baking")
    count: int

    def describe(self) -> str:
        shown = ", ".join(f"{name} ({doing})" for name, doing in self.nodes)
        more = self.count - len(self.nodes)
        return shown + (f" and {more} more" if more > 0 else "") if shown else "nothing"


def stuck_since(rollout: Rollout, ctx: Context, bake_seconds: int, paused: bool) -> datetime | None:
    """When the rollout counts as stuck from (it may not be yet); None when it cannot be."""
    if rollout.state != "rolling" or paused:
        return None
    return rollout.wave_started_at + timedelta(seconds=bake_seconds + ctx.stuck_seconds)


def waiting_on(session: Session, rollout: Rollout) -> Waiting:
    """The members of the current wave that are neither baked nor failed nor skipped."""
    where = and_(
        _M.rollout_id == rollout.id,
        _M.wave == rollout.wave,
        _M.failed_at.is_(None),
        _M.baked_at.is_(None),
        _M.trouble.is_(None),
        eligible.judged(rollout),
    )
    count = session.scalar(select(func.count()).select_from(_M).where(where)) or 0
    rows = session.execute(
        select(_M.node_name, _M.offline, _M.succeeded_at, Node.last_seen)
        .outerjoin(Node, Node.name == _M.node_name)
        .where(where)
        # The ones that hold the wave up first: offline nodes, then those without a report.
        .order_by(_M.succeeded_at.is_not(None), _M.offline.is_(False), _M.node_name)
        .limit(SHOWN)
    ).all()
    nodes = []
    for name, offline, succeeded, seen in rows:
        if succeeded is not None:
            doing = "baking"
        elif offline:
            doing = f"offline, last heard {iso(seen)}" if seen else "offline"
        else:
            doing = "told the release, no report of it yet"
        nodes.append((name, doing))
    return Waiting(tuple(nodes), count)


def holding(session: Session, rollout: Rollout) -> str | None:
    """Why the current wave is not promoted, in judge.py's words (None: nothing holds it)."""
    tally = counts.tallies(session, rollout).get(rollout.wave)
    if tally is None:
        return None
    judged = judge(stored.load_policy(rollout), tally)
    return judged.why if judged.verdict == "wait" else None


def _why(session: Session, rollout: Rollout) -> str:
    why = holding(session, rollout)
    return f" ({why})" if why else ""


def notice(
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime
) -> str | None:
    """Tell the operator, once per wave, that the rollout is stuck; "stuck" when told now."""
    if rollout.stuck_at is not None:
        return None
    since = stuck_since(rollout, ctx, stored.load_policy(rollout).bake_seconds, bin_.paused)
    if since is None or now < since:
        return None
    if not lifecycle.claim(session, rollout, now):
        return None
    rollout.stuck_at = now
    waited = int((now - rollout.wave_started_at).total_seconds())
    text = (
        f"rollout of {rollout.release_sha[:12]} stuck: {wave_name(rollout.wave)} has waited "
        f"{waited} s, on {waiting_on(session, rollout).describe()}{_why(session, rollout)}; "
        f"`bin-manager rollout promote {bin_.name}` moves on, "
        f"`bin-manager rollout abort {bin_.name}` reverts"
    )
    lifecycle.step(session, ctx, rollout, bin_.name, "rollout-stuck", "rollout-stuck", text, now)
    return "stuck"
