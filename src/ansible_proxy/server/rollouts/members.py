"""What each member node showed of a rollout's release, recorded from its own reports.

Called by the write path (progress reports and POST /bins, in their group commit) after
the write rule accepted the caller: in `required` node-auth mode that is the node's own
credential or its cluster proxy's, so a report in another node's name never counts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Bin, Node, Rollout, RolloutMember
from ansible_proxy.server.db.queries import ROLLOUT_ANSWERING
from ansible_proxy.server.rollouts.lifecycle import Context, step


def _membership(session: Session, bin_: Bin, node: Node) -> tuple[Rollout, RolloutMember] | None:
    """The answering rollout of the bin that has told this node its release, if any."""
    row = session.execute(
        select(Rollout, RolloutMember)
        .join(RolloutMember, RolloutMember.rollout_id == Rollout.id)
        .where(
            Rollout.bin_id == bin_.id,
            Rollout.state.in_(ROLLOUT_ANSWERING),
            Rollout.reverted.is_(False),
            RolloutMember.node_name == node.name,
            RolloutMember.wave <= Rollout.wave,
        )
        .order_by(Rollout.id.desc())
    ).first()
    return None if row is None else (row[0], row[1])


def note_progress(
    session: Session,
    ctx: Context,
    bin_: Bin,
    node: Node,
    sha256: str,
    status: str,
    reason: str | None,
    now: datetime,
) -> None:
    """A progress report: `success` of the release counts it installed, `failed` failed."""
    if status == "failed":
        text = f"{node.name} reported {sha256[:12]} failed" + (f": {reason}" if reason else "")
        data = {
            "binName": bin_.name,
            "nodeName": node.name,
            "sha256": sha256,
            "reason": reason or "",
        }
        ctx.notify(session, "node-rollback", f"{bin_.name}: {text}", data, now)
    if status not in ("success", "failed"):
        return
    found = _membership(session, bin_, node)
    if found is None:
        return
    rollout, member = found
    if sha256 != rollout.release_sha or member.failed_at is not None:
        return
    if status == "success":
        member.succeeded_at = member.succeeded_at or now
        return
    _fail(
        session,
        ctx,
        rollout,
        member,
        bin_.name,
        reason or "its agent reported the upgrade failed",
        now,
    )


def note_running(
    session: Session, ctx: Context, bin_: Bin, node: Node, sha256: str, now: datetime
) -> None:
    """POST /bins: running the release counts as installed; running another after it had
    installed the release is a rollback (the inspector's, or a person's)."""
    found = _membership(session, bin_, node)
    if found is None:
        return
    rollout, member = found
    if member.failed_at is not None:
        return
    if sha256 == rollout.release_sha:
        member.succeeded_at = member.succeeded_at or now
    elif member.succeeded_at is not None:
        _fail(
            session,
            ctx,
            rollout,
            member,
            bin_.name,
            f"went back to {sha256[:12]} after installing it",
            now,
        )


def _fail(
    session: Session,
    ctx: Context,
    rollout: Rollout,
    member: RolloutMember,
    bin_name: str,
    why: str,
    now: datetime,
) -> None:
    member.failed_at = now
    member.reason = why[:300]
    step(
        session,
        ctx,
        rollout,
        bin_name,
        "rollout-node-failed",
        None,
        f"{member.node_name} failed: {why}",
        now,
    )
