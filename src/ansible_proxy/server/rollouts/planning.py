"""Who goes in which wave, for the policy and fleet of now: what a publish would start
(lifecycle.on_publish computes its waves here, so `rollout plan` shows exactly that, never
a second copy of the ordering), and `bin-manager rollout plan` before anything is
published, with when each wave starts at the earliest.

At the earliest, the canary is told at the publish and each later wave one bake after the
one before (a wave is promoted only once its nodes stayed healthy for the bake, counted
from their success: a slower install, an outage of the server or a paused bin only moves
it later); the rollout completes a bake after its last wave, plus its watch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Bin, Latest
from ansible_proxy.server.db.secrets import ROLLOUT_ORDER, server_secret
from ansible_proxy.server.rollouts import calendar, eligible, stored
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.eligible import Candidate
from ansible_proxy.server.rollouts.policy import Policy, plan_waves

MAX_NODES_SHOWN = 200  # per wave; the sizes are always whole


@dataclass(frozen=True)
class Plan:
    """The waves a publish of (bin, arch) would start now, and who it would leave out."""

    policy: Policy
    source: str  # "bin", "bin/arch" or "default" (stored.effective_policy)
    waves: list[list[str]]
    members: dict[str, Candidate] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)

    def starts(self, now: datetime, frozen_until: datetime | None = None) -> list[int]:
        """Seconds after a publish at `now` (the calendar clock) at which each wave is told
        the release, at the earliest: a bake after the wave before, and not before the
        freeze ends nor while a window that applies to one of its nodes is closed."""
        if self.policy.immediate:
            return [0 for _ in self.waves]
        found, moment = [], now
        for index, names in enumerate(self.waves):
            if index:
                moment += timedelta(seconds=self.policy.bake_seconds)
            if frozen_until is not None and moment < frozen_until:
                moment = frozen_until
            labels = [self.members[name].labels for name in names if name in self.members]
            moment = calendar.opens_for(self.policy, labels, moment)
            found.append(math.ceil((moment - now).total_seconds()))
        return found

    def completes(self, starts: list[int]) -> int | None:
        """Seconds after the publish at which the rollout completes at the earliest."""
        if not self.waves or self.policy.immediate:
            return None
        return starts[-1] + self.policy.bake_seconds + self.policy.watch_seconds


def plan(session: Session, ctx: Context, bin_: Bin, arch: str, now: datetime) -> Plan:
    """The waves of (bin, arch) for its policy and fleet now, in the rollout order."""
    policy, source = stored.effective_policy(session, ctx, bin_.id, arch)
    found = eligible.fleet(session, bin_, arch, ctx.stale_seconds)
    labels = {name: node.labels for name, node in found.members.items()}
    waves = plan_waves(bin_.name, labels, policy, server_secret(session, ROLLOUT_ORDER, now))
    return Plan(policy, source, waves, found.members, found.left_out)


def plan_view(
    session: Session, ctx: Context, bin_: Bin, arch: str | None, now: datetime
) -> dict[str, Any]:
    """`rollout plan`: for each arch of the bin (or `arch`), the waves a publish would start."""
    arches = (
        [arch]
        if arch
        else sorted(set(session.scalars(select(Latest.arch).where(Latest.bin_id == bin_.id))))
    )
    return {
        "binName": bin_.name,
        "plans": [_arch_view(session, ctx, bin_, each, now) for each in arches],
    }


def _arch_view(
    session: Session, ctx: Context, bin_: Bin, arch: str, now: datetime
) -> dict[str, Any]:
    found = plan(session, ctx, bin_, arch, now)
    today = ctx.calendar()
    frozen = calendar.freeze_in_force(session, today)
    starts = found.starts(today, frozen.until if frozen else None)
    if not found.waves:
        note = "no node runs a release of it yet: a publish tells every node at once"
    elif found.policy.immediate:
        note = "immediate: a publish tells every node at once"
    else:
        note = None
    waves = [
        {
            "index": index,
            "name": wave_name(index) if not found.policy.immediate else "everyone",
            "size": len(names),
            "nodes": names[:MAX_NODES_SHOWN],
            "earliestSeconds": start,
        }
        for index, (names, start) in enumerate(zip(found.waves, starts, strict=True))
    ]
    return {
        "arch": arch,
        "policy": found.policy.to_dict(),
        "policySource": found.source,
        "waves": waves,
        "completesAfterSeconds": found.completes(starts),
        "leftOut": [{"name": name, "reason": why} for name, why in sorted(found.left_out.items())][
            :MAX_NODES_SHOWN
        ],
        "leftOutCount": len(found.left_out),
        "note": note,
        "freeze": None if frozen is None else frozen.shown(),
    }
