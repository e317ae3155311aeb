"""What each member node showed of a rollout's release, recorded from its own reports.

Called by the write path (progress reports and POST /bins, in their group commit) after
the write rule accepted the caller: in `required` node-auth mode that is the node's own
credential or its cluster proxy's, so a report in another node's name never counts.

Only a failure the release caused counts against it (a `failed` report whose cause is
"release", or says none, as agents of the original design do not): it may halt the
rollout and revert the fleet. A host that could not try the release ("host") or would not
("refused") is *trouble*: shown apart, never a failure, and the member then neither holds
its wave up nor counts towards a halt, until it installs the release after all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ansible_proxy.protocol import FailureCause
from ansible_proxy.server.db.models import Bin, Node, Rollout, RolloutLeftOut, RolloutMember
from ansible_proxy.server.db.queries import ROLLOUT_ANSWERING
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.lifecycle import step


def _membership(session: Session, bin_: Bin, node: Node) -> tuple[Rollout, RolloutMember] | None:
    """The answering rollout of the bin that has told this node its release, if any."""
    row = session.execute(
        select(Rollout, RolloutMember)
        .join(RolloutMember, RolloutMember.rollout_id == Rollout.id)
        .where(
            Rollout.bin_id == bin_.id,
            Rollout.state.in_((*ROLLOUT_ANSWERING, "watching")),  # judged after 100 % too
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
    cause: str | None = None,
) -> None:
    """A progress report: `success` of the release counts it installed; `failed` failed
    it when the release was the cause (`cause` None: the release), else it is trouble."""
    cause = cause or FailureCause.RELEASE
    if status == "failed" and cause == FailureCause.RELEASE:
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
        _installed(member, now)
        return
    if cause != FailureCause.RELEASE:
        _trouble(session, ctx, rollout, member, bin_.name, cause, reason, now)
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
        _installed(member, now)
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


def forget_node(session: Session, node_name: str) -> int:
    """A node deleted from the fleet (`bin-manager nodes delete`): it leaves every rollout,
    so no wave waits for it and it counts towards no halt; how many rollouts it was in."""
    gone = session.execute(delete(RolloutMember).where(RolloutMember.node_name == node_name))
    session.execute(delete(RolloutLeftOut).where(RolloutLeftOut.node_name == node_name))
    return int(getattr(gone, "rowcount", 0) or 0)


def _installed(member: RolloutMember, now: datetime) -> None:
    """The member runs the release: its bake may start, whatever trouble it had before."""
    member.succeeded_at = member.succeeded_at or now
    if member.trouble is not None:
        member.trouble = None
        member.reason = None


def _trouble(
    session: Session,
    ctx: Context,
    rollout: Rollout,
    member: RolloutMember,
    bin_name: str,
    cause: str,
    reason: str | None,
    now: datetime,
) -> None:
    """The host could not try the release, or refused it: logged once (a host retries each
    tick), the member set aside, the release not blamed."""
    if member.succeeded_at is not None:
        return  # it runs the release: a later retry's trouble is not this rollout's concern
    what = "could not try it" if cause == FailureCause.HOST else "refused it"
    if member.trouble != cause:
        text = f"{member.node_name} {what} ({cause}, not counted against the release)"
        step(
            session, ctx, rollout, bin_name, "rollout-node-trouble", None,
            text + (f": {reason}" if reason else ""), now,
        )  # fmt: skip
    member.trouble = cause
    member.reason = (reason or what)[:300]


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
