"""What is stored about a bin's rollouts: its policy rows (per arch, or for every arch)
and the rollouts of a (bin, arch) by state. Reads and one write (`set_policy`); no
rollout state changes here (lifecycle.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Bin, Event, Rollout, RolloutPolicy
from ansible_proxy.server.db.queries import ROLLOUT_ANSWERING
from ansible_proxy.server.rollouts import windows
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.policy import Policy, make_policy, policy_from_json


def policy_row(session: Session, bin_id: int, arch: str) -> RolloutPolicy | None:
    """The bin's own policy for `arch`, else its policy for every arch (`arch` "")."""
    return session.get(RolloutPolicy, (bin_id, arch)) or session.get(RolloutPolicy, (bin_id, ""))


def policy_of_row(row: RolloutPolicy) -> Policy:
    if row.immediate:
        return make_policy(immediate=True)
    return make_policy(
        canary=row.canary,
        waves=row.waves,
        bake=row.bake_seconds,
        max_failures=row.max_failures,
        canary_label=row.canary_label,
        canary_nodes=row.canary_nodes,
        max_offline=row.max_offline,
        max_refused=row.max_refused,
        watch=row.watch_seconds or None,
        window=row.windows,
    )


def effective_policy(session: Session, ctx: Context, bin_id: int, arch: str) -> tuple[Policy, str]:
    """(policy, where it comes from: "bin", "bin/arch" or "default")."""
    row = policy_row(session, bin_id, arch)
    if row is None:
        return ctx.default_policy, "default"
    return policy_of_row(row), ("bin" if row.arch == "" else "bin/arch")


def set_policy(
    session: Session, bin_: Bin, arch: str | None, policy: Policy, now: datetime
) -> None:
    """Record `policy` for the bin (every arch when `arch` is None); used from the next publish."""
    key = (bin_.id, arch or "")
    row = session.get(RolloutPolicy, key)
    if row is None:
        row = RolloutPolicy(bin_id=bin_.id, arch=arch or "")
        session.add(row)
    label = "=".join(policy.canary_label) if policy.canary_label else None
    row.immediate = policy.immediate
    row.canary = str(policy.canary)
    row.waves = ",".join(f"{share}%" for share in policy.waves)
    row.bake_seconds = policy.bake_seconds
    row.max_failures = str(policy.max_failures)
    row.canary_label = label
    row.canary_nodes = ",".join(policy.canary_nodes) or None
    row.max_offline = None if policy.max_offline is None else str(policy.max_offline)
    row.max_refused = None if policy.max_refused is None else str(policy.max_refused)
    row.watch_seconds = policy.watch_seconds or None
    row.windows = windows.describe(policy.windows) or None
    row.updated_at = now
    session.add(
        Event(
            at=now,
            kind="rollout-policy",
            bin_name=bin_.name,
            arch=arch,
            sha256=None,
            detail=policy.describe(),
        )
    )
    session.flush()


def answering(session: Session, bin_id: int, arch: str) -> Rollout | None:
    """The rollout that answers nodes for (bin, arch) now, if any."""
    return session.scalars(
        select(Rollout)
        .where(
            Rollout.bin_id == bin_id,
            Rollout.arch == arch,
            Rollout.state.in_(ROLLOUT_ANSWERING),
            Rollout.reverted.is_(False),
        )
        .order_by(Rollout.id.desc())
    ).first()


def open_rollout(session: Session, bin_id: int, arch: str) -> Rollout | None:
    """The rollout of (bin, arch) not yet ended: rolling, or halted (reverted or not)."""
    return session.scalars(
        select(Rollout)
        .where(Rollout.bin_id == bin_id, Rollout.arch == arch, Rollout.state.in_(ROLLOUT_ANSWERING))
        .order_by(Rollout.id.desc())
    ).first()


def latest_rollout(session: Session, bin_id: int, arch: str) -> Rollout | None:
    """The newest rollout of (bin, arch), in any state."""
    return session.scalars(
        select(Rollout)
        .where(Rollout.bin_id == bin_id, Rollout.arch == arch)
        .order_by(Rollout.id.desc())
    ).first()


def load_policy(rollout: Rollout) -> Policy:
    return policy_from_json(rollout.policy)
