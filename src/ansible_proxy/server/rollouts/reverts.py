"""Where a fleet revert sends each member, and who it could not move.

A revert makes the rollout's previous release the latest again. A host with TRUSTED_KEYS
takes an older release without a newly signed statement only as one step back to exactly
the release it ran before (docs/security.md, "Moving back"). A member that ran some other
release before this one (it was the canary of a release this one superseded) would refuse
the previous release for ever. So when the reverted release is signed above every
statement of the previous one, each member that still ran the release at the revert is
told back the release it ran before it (`RolloutMember.before_sha`), when that is a good
release of the bin; every other node is told the previous release. The members still on
the reverted release are shown with why (`stranded`), never silently left there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import (
    Node,
    NodeBin,
    ProgressRow,
    Release,
    Rollout,
    RolloutMember,
    Signature,
)
from ansible_proxy.signatures import MAX_SEQUENCE

_M = RolloutMember
MAX_STRANDED_SHOWN = 50


def keep_way_back(session: Session, rollout: Rollout) -> None:
    """At the revert: keep `before_sha` only for the members that run the release now (the
    others never installed it, or their own rollback took them back already)."""
    running = (
        select(Node.name)
        .join(NodeBin, NodeBin.node_id == Node.id)
        .where(NodeBin.bin_id == rollout.bin_id, NodeBin.sha256 == rollout.release_sha)
    )
    session.execute(
        update(_M)
        .where(_M.rollout_id == rollout.id, _M.node_name.not_in(running))
        .values(before_sha=None)
        .execution_options(synchronize_session=False)
    )


def carry_running(session: Session, rollout: Rollout, now: datetime) -> None:
    """At a resume: the current wave's members that run the release still (their last POST
    /bins names it) count as installed again, since they will not report it again; except
    a member in the middle of a move back (its newest report is `in_progress` for another
    release), whose report of that move, after the resume, must not count as going back."""
    newest = (
        select(func.max(ProgressRow.id))
        .where(ProgressRow.bin_id == rollout.bin_id)
        .group_by(ProgressRow.node_id)
    )
    moving = (
        select(Node.name)
        .join(ProgressRow, ProgressRow.node_id == Node.id)
        .where(
            ProgressRow.id.in_(newest),
            ProgressRow.status == "in_progress",
            ProgressRow.target_hash != rollout.release_sha,
        )
    )
    running = (
        select(Node.name)
        .join(NodeBin, NodeBin.node_id == Node.id)
        .where(NodeBin.bin_id == rollout.bin_id, NodeBin.sha256 == rollout.release_sha)
    )
    session.execute(
        update(_M)
        .where(
            _M.rollout_id == rollout.id,
            _M.wave == rollout.wave,
            _M.succeeded_at.is_(None),
            _M.failed_at.is_(None),
            _M.node_name.in_(running),
            _M.node_name.not_in(moving),
        )
        .values(succeeded_at=now)
        .execution_options(synchronize_session=False)
    )


def way_back_note(session: Session, rollout: Rollout) -> str:
    """What the revert's text adds about members told back their own previous release."""
    back = back_targets(session, rollout.id)
    if not back:
        return ""
    names = sorted(back)
    shown = ", ".join(f"{name} {back[name][:12]}" for name in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return (
        f"; told instead the release each ran before it (a signed host moves back unsigned "
        f"one step only): {shown}{more}"
    )


def note_running(session: Session, rollout: Rollout, members: ColumnElement[bool]) -> None:
    """Record what `members` run now (their last POST /bins), where a revert sends them back."""
    running = (
        select(NodeBin.sha256)
        .join(Node, Node.id == NodeBin.node_id)
        .where(Node.name == RolloutMember.node_name, NodeBin.bin_id == rollout.bin_id)
        .scalar_subquery()
    )
    session.execute(
        update(RolloutMember)
        .where(members, RolloutMember.node_name.in_(select(Node.name)))
        .values(before_sha=running)
        .execution_options(synchronize_session=False)
    )


def _sequence(session: Session, bin_id: int, arch: str, sha256: str) -> int:
    """The highest sequence signed for that release (0: unsigned)."""
    found = session.scalar(
        select(func.max(Signature.sequence))
        .join(Release, Release.id == Signature.release_id)
        .where(
            Release.bin_id == bin_id,
            Release.arch == arch,
            Release.sha256 == sha256,
            Signature.sequence <= MAX_SEQUENCE,
        )
    )
    return int(found or 0)


def needs_way_back(session: Session, rollout: Rollout) -> bool:
    """True when a signed host that installed the release may refuse the previous one: the
    release is signed above every statement of the previous release."""
    release = _sequence(session, rollout.bin_id, rollout.arch, rollout.release_sha)
    return release > _sequence(session, rollout.bin_id, rollout.arch, rollout.previous_sha)


def back_targets(session: Session, rollout_id: int) -> dict[str, str]:
    """node → the release a reverted rollout tells it instead of the previous one (its own
    previous release); empty when every member can take the previous release."""
    rollout = session.get(Rollout, rollout_id)
    if rollout is None or not rollout.reverted or not needs_way_back(session, rollout):
        return {}
    rows = session.execute(
        select(_M.node_name, _M.before_sha).where(
            _M.rollout_id == rollout.id,
            _M.before_sha.is_not(None),
            _M.before_sha.not_in((rollout.previous_sha, rollout.release_sha)),
        )
    ).all()
    wanted = {before for _, before in rows}
    good = set(
        session.scalars(
            select(Release.sha256).where(
                Release.bin_id == rollout.bin_id,
                Release.arch == rollout.arch,
                Release.sha256.in_(wanted),
                Release.bad_since.is_(None),
            )
        )
    )
    return {name: before for name, before in rows if before in good}


@dataclass(frozen=True)
class Stranded:
    """A node that still runs a reverted release: what it is told, and why it has not
    moved yet as far as its reports say (its last failure of that target), if any."""

    name: str
    told: str
    reason: str | None


def stranded(session: Session, rollout: Rollout) -> tuple[list[Stranded], int]:
    """The nodes of the rollout's arch that still run its reverted release (the first
    MAX_STRANDED_SHOWN by name), and how many in all."""
    running = (
        (Node.id == NodeBin.node_id)
        & (NodeBin.bin_id == rollout.bin_id)
        & (NodeBin.sha256 == rollout.release_sha)
    )
    members = select(_M.node_name).where(_M.rollout_id == rollout.id)
    query = select(Node.id, Node.name).join(NodeBin, running).where(Node.name.in_(members))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Node.name).limit(MAX_STRANDED_SHOWN)).all()
    targets = back_targets(session, rollout.id)
    found = []
    for node_id, name in rows:
        told = targets.get(name, rollout.previous_sha)
        found.append(Stranded(name, told, _last_failure(session, node_id, rollout.bin_id, told)))
    return found, count


def _last_failure(session: Session, node_id: int, bin_id: int, target: str) -> str | None:
    """The reason of the node's newest report about `target`, when it is a failure."""
    row = session.execute(
        select(ProgressRow.status, ProgressRow.reason)
        .where(
            ProgressRow.node_id == node_id,
            ProgressRow.bin_id == bin_id,
            ProgressRow.target_hash == target,
        )
        .order_by(ProgressRow.id.desc())
        .limit(1)
    ).first()
    if row is None or row[0] != "failed":
        return None
    return str(row[1] or "its agent reported a failure")
