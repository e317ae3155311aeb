"""Members that hold a rollout's release as bad on their own host.

An agent whose install of a release failed (its watch window, its self-test) or whose
inspector rolled it back marks it "err" in its manifest and never installs it again by
itself (docs/agent.md). After an operator fixed the cause and resumed the rollout, such a
member is told the release and ignores it: its wave would wait for ever. The server does
not override a host's quarantine; it names these members, with the command that lifts it
on the host (`ansible-proxy forget BIN SHA`), in the resume's answer and in `rollout status`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ansible_proxy.protocol import FailureCause
from ansible_proxy.server.db.models import Node, ProgressRow, Rollout, RolloutMember

_M = RolloutMember
MAX_NAMED = 20


def forget_command(bin_name: str, sha256: str) -> str:
    return f"ansible-proxy forget {bin_name} {sha256}"


def quarantined(
    session: Session, rollout: Rollout, names: Iterable[str] | None = None
) -> dict[str, str]:
    """node → its failure, for the members of the started waves (among `names` when given)
    not counted installed nor failed now, that reported a failure the release caused since
    the rollout started (so their agent marked it "err") and no success after it."""
    members = select(_M.node_name).where(
        _M.rollout_id == rollout.id,
        _M.wave <= rollout.wave,
        _M.succeeded_at.is_(None),
        _M.failed_at.is_(None),
    )
    if names is not None:
        members = members.where(_M.node_name.in_(list(names)))
    about = (
        select(ProgressRow.id, ProgressRow.node_id, ProgressRow.status, ProgressRow.cause)
        .join(Node, Node.id == ProgressRow.node_id)
        .where(
            Node.name.in_(members),
            ProgressRow.bin_id == rollout.bin_id,
            ProgressRow.target_hash == rollout.release_sha,
            ProgressRow.reported_at >= rollout.started_at,
        )
        .subquery()
    )
    release_cause = or_(about.c.cause.is_(None), about.c.cause == FailureCause.RELEASE)
    failed = (
        select(about.c.node_id, func.max(about.c.id).label("id"))
        .where(about.c.status == "failed", release_cause)
        .group_by(about.c.node_id)
        .subquery()
    )
    succeeded = (
        select(about.c.node_id, func.max(about.c.id).label("id"))
        .where(about.c.status == "success")
        .group_by(about.c.node_id)
        .subquery()
    )
    rows = session.execute(
        select(Node.name, ProgressRow.reason)
        .join(failed, failed.c.node_id == Node.id)
        .join(ProgressRow, ProgressRow.id == failed.c.id)
        .outerjoin(succeeded, succeeded.c.node_id == Node.id)
        .where(or_(succeeded.c.id.is_(None), succeeded.c.id < failed.c.id))
        .order_by(Node.name)
    ).all()
    return {name: reason or "its agent reported the install failed" for name, reason in rows}


def resume_lines(bin_name: str, rollout: Rollout, found: dict[str, str]) -> list[str]:
    """What a resume says about the members holding the release as bad: who, why, and the
    command that lets each try it again, to run on that host."""
    if not found:
        return []
    sha = rollout.release_sha
    lines = [
        f"  {name} holds {sha[:12]} as bad since its failure ({why}) and will not try it "
        f"again: on {name}, once its cause is fixed, run `{forget_command(bin_name, sha)}`"
        for name, why in list(found.items())[:MAX_NAMED]
    ]
    if len(found) > MAX_NAMED:
        lines.append(f"  … and {len(found) - MAX_NAMED} more (rollout status {bin_name})")
    return lines


def state_reason(bin_name: str, rollout: Rollout, why: str) -> str:
    """A quarantined member's reason in `rollout status`."""
    command = forget_command(bin_name, rollout.release_sha)
    return f"holds {rollout.release_sha[:12]} as bad since its failure ({why}): on it, `{command}`"
