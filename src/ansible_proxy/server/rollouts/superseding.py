"""What a publish during a rollout ends: the rollout it supersedes and the release it
withdraws. The publisher is told (the publish answer's `supersedes`, `bin-manager
publish` on stderr) and the activity log keeps it (`rollout-superseded`).

A rollout still rolling or halted, not reverted, was not proven good: once superseded its
release is told to nobody, and the nodes it had been told to are told the new release in
the new rollout's started waves, the last good release everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Bin, Rollout, RolloutMember
from ansible_proxy.server.db.queries import ROLLOUT_ANSWERING

NAMES_SHOWN = 5


@dataclass(frozen=True)
class Superseded:
    """A rollout a publish ends, as it was: its release, state, and who had been told it."""

    release: str
    previous: str
    state: str
    reverted: bool
    wave: int
    told: int
    names: tuple[str, ...]

    @property
    def withdrawn(self) -> list[str]:
        """The releases no node is told any more: its own, unless a revert already did."""
        return [] if self.reverted else [self.release]

    def describe(self) -> str:
        """`the rollout of B (rolling at the canary); withdraws B (told to 1 node: x); …`."""
        where = "the canary" if self.wave == 0 else f"wave {self.wave}"
        if self.reverted:
            return (
                f"the rollout of {self.release[:12]} (halted and reverted; "
                f"{self.release[:12]} stays marked bad); withdraws nothing more"
            )
        names = ", ".join(self.names) + (
            f" and {self.told - len(self.names)} more" if self.told > len(self.names) else ""
        )
        told = f"told to {self.told} node{'s' if self.told != 1 else ''}: {names}"
        return (
            f"the rollout of {self.release[:12]} ({self.state} at {where}); withdraws "
            f"{self.release[:12]} ({told}): nodes outside the new rollout's started waves "
            f"are told {self.previous[:12]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The publish answer's `supersedes`."""
        return {
            "release": self.release,
            "previous": self.previous,
            "state": self.state,
            "reverted": self.reverted,
            "wave": self.wave,
            "told": self.told,
            "nodes": list(self.names),
            "withdrawn": self.withdrawn,
            "text": f"supersedes {self.describe()}",
        }


def superseded(session: Session, rollout: Rollout) -> Superseded:
    """`rollout` as a publish finds it, before ending it."""
    started = (RolloutMember.rollout_id == rollout.id) & (RolloutMember.wave <= rollout.wave)
    told = (
        0
        if rollout.reverted
        else session.scalar(select(func.count()).select_from(RolloutMember).where(started)) or 0
    )
    names = (
        ()
        if rollout.reverted
        else tuple(
            session.scalars(
                select(RolloutMember.node_name)
                .where(started)
                .order_by(RolloutMember.wave, RolloutMember.node_name)
                .limit(NAMES_SHOWN)
            )
        )
    )
    return Superseded(
        rollout.release_sha,
        rollout.previous_sha,
        rollout.state,
        rollout.reverted,
        rollout.wave,
        told,
        names,
    )


def before_publish(session: Session, bin_name: str, arch: str, sha256: str) -> Superseded | None:
    """What a publish of `sha256` for (bin, arch) would supersede, read before it: the open
    rollout of another release (or of this one, reverted), if any."""
    rollout = session.scalars(
        select(Rollout)
        .join(Bin, Bin.id == Rollout.bin_id)
        .where(Bin.name == bin_name, Rollout.arch == arch, Rollout.state.in_(ROLLOUT_ANSWERING))
        .order_by(Rollout.id.desc())
    ).first()
    if rollout is None or (rollout.release_sha == sha256 and not rollout.reverted):
        return None
    return superseded(session, rollout)
