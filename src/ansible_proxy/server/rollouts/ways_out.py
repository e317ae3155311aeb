"""What `rollout status` shows beside the waves, so that no waiting or halted state is silent:
the nodes left out at the start, whether the bin is paused, what a stuck wave waits on,
and after a revert the members told back their own previous release and the nodes still
on the reverted release, with why and the way out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.listings import iso
from ansible_proxy.server.db.models import Bin, Rollout, RolloutLeftOut
from ansible_proxy.server.rollouts import reverts, stored, stuck
from ansible_proxy.server.rollouts.context import Context

MAX_LEFT_OUT_SHOWN = 200


def left_out(session: Session, rollout: Rollout) -> tuple[list[dict[str, str]], int]:
    """The nodes the rollout left out at its start ({name, reason}, the first by name), and
    how many in all."""
    where = RolloutLeftOut.rollout_id == rollout.id
    count = session.scalar(select(func.count()).select_from(RolloutLeftOut).where(where)) or 0
    rows = session.execute(
        select(RolloutLeftOut.node_name, RolloutLeftOut.reason)
        .where(where)
        .order_by(RolloutLeftOut.node_name)
        .limit(MAX_LEFT_OUT_SHOWN)
    ).all()
    return [{"name": name, "reason": reason} for name, reason in rows], count


def stuck_view(
    session: Session, ctx: Context, rollout: Rollout, paused: bool, now: datetime
) -> dict[str, Any] | None:
    """{since, waitingOn, count, notifiedAt} while the rollout is stuck (stuck.py), else None."""
    bake = stored.load_policy(rollout).bake_seconds
    since = stuck.stuck_since(rollout, ctx, bake, paused)
    if since is None or now < since:
        return None
    waiting = stuck.waiting_on(session, rollout)
    return {
        "since": iso(since),
        "waitingOn": [{"name": name, "doing": doing} for name, doing in waiting.nodes],
        "count": waiting.count,
        "text": waiting.describe()
        + (f" ({why})" if (why := stuck.holding(session, rollout)) else ""),
        "notifiedAt": iso(rollout.stuck_at) if rollout.stuck_at else None,
    }


def reverted_view(session: Session, rollout: Rollout, bin_name: str) -> dict[str, Any] | None:
    """For a reverted rollout still answering: who is told back their own previous release,
    and the nodes still on the reverted release with what they are told and why they have
    not moved (their last failure of it), and the way out."""
    if not rollout.reverted or rollout.state not in ("rolling", "halted"):
        return None
    back = reverts.back_targets(session, rollout.id)
    left, count = reverts.stranded(session, rollout)
    pin = f"bin-manager pin {bin_name} {rollout.previous_sha} --sign-key KEY"
    return {
        "toldBack": [{"name": name, "release": sha} for name, sha in sorted(back.items())],
        "stranded": [
            {"name": node.name, "told": node.told, "reason": node.reason} for node in left
        ],
        "strandedCount": count,
        # A signed pin is a statement every host with TRUSTED_KEYS takes, whatever it ran.
        "wayOut": (
            f"each node still on {rollout.release_sha[:12]} is told a release to go back to; "
            f"one that refuses it (a signed host moves back unsigned one step only) lands "
            f"with a signed pin: `{pin}`"
        ),
    }


def paused(session: Session, rollout: Rollout) -> bool:
    bin_ = session.get(Bin, rollout.bin_id)
    return bool(bin_ is not None and bin_.paused)
