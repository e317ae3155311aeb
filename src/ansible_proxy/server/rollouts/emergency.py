"""The emergency path (`bin-manager rollout revert BIN --reason …`): every node of a bin's
arch back to the last completed release at once, whatever its rollout is doing — no bake,
no wave, no window is waited for — with the operator's reason in the activity log (and,
through the request's audit entry, in the audit trail).

The release to go back to is the rollout's previous release (the last good one when it
started: the release of the last completed rollout, or the bin's first) when the latest
release has a rollout that was not reverted yet, in any state (rolling, halted, watched
or completed): that rollout is halted and reverted as a failing wave would be (signed
hosts told their own way back, reverts.py). A latest release without a rollout (an
immediate policy, a first release) goes back to the newest earlier release whose
rollout completed, else to the release published before it. Either way the reverted
release is marked bad (withdrawn, not published again until re-enabled), and a paused
bin is resumed (a pause keeps each node on what it runs, so the revert would wait).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Bin, Event, Release, Rollout
from ansible_proxy.server.problems import Conflict
from ansible_proxy.server.rollouts import lifecycle, stored
from ansible_proxy.server.rollouts.context import Context

REVERTIBLE = ("rolling", "halted", "watching", "completed")


def revert_now(
    session: Session, ctx: Context, bin_: Bin, arch: str, reason: str, now: datetime
) -> str:
    """Revert (bin, arch) at once; one line saying what every node is told now."""
    pointer = queries.latest_row(session, bin_, arch)
    current = queries.release_by_id(session, pointer.release_id if pointer else None)
    if pointer is None or current is None:
        raise Conflict(f"{bin_.name} has no {arch} release to revert")
    why = f"reverted at once by an operator: {reason}"
    rollout = stored.latest_rollout(session, bin_.id, arch)
    if rollout is not None and rollout.release_sha == current.sha256 and not rollout.reverted:
        if rollout.state not in REVERTIBLE:
            raise Conflict(f"the rollout of {current.sha256[:12]} is {rollout.state}: pin instead")
        if not lifecycle.claim(session, rollout, now):
            raise Conflict("another request changed the same rollout at the same time: retry")
        target = rollout.previous_sha
        if rollout.state == "halted":
            rollout.reason = why[:300]
        else:
            lifecycle.halt(session, ctx, rollout, bin_, now, why, revert=False)
        lifecycle.revert_fleet(session, ctx, rollout, bin_, now, because=why)
    else:
        back = _earlier_good(session, bin_, arch, current)
        if back is None:
            raise Conflict(
                f"{bin_.name} ({arch}) has no release before {current.sha256[:12]} to go back to"
            )
        target = back.sha256
        current.bad_since = now
        queries.point_latest(session, bin_, arch, back, now)
        text = f"{why}: every node is told {target[:12]} again; {current.sha256[:12]} is marked bad"
        session.add(
            Event(at=now, kind="rollout-revert", bin_name=bin_.name, arch=arch,
                  sha256=current.sha256, detail=text[:300])
        )  # fmt: skip
    resumed = ""
    if bin_.paused:  # a pause keeps each node on what it runs: the revert would wait
        queries.set_paused(session, bin_, False, now)
        resumed = f"; {bin_.name} was paused and is resumed"
    return (
        f"{bin_.name} ({arch}): reverted at once: every node is told {target[:12]} again, "
        f"{current.sha256[:12]} is marked bad ({reason}){resumed}"
    )


def _earlier_good(session: Session, bin_: Bin, arch: str, current: Release) -> Release | None:
    """The newest release published before `current` whose rollout completed, else the
    newest one before it that is not marked bad."""
    earlier = (Release.bin_id == bin_.id) & (Release.arch == arch) & (Release.id < current.id)
    completed = session.scalars(
        select(Release)
        .join(Rollout, (Rollout.bin_id == Release.bin_id) & (Rollout.release_sha == Release.sha256))
        .where(earlier, Rollout.arch == arch, Rollout.state == "completed")
        .order_by(Release.id.desc())
    ).first()
    if completed is not None:
        return completed
    return session.scalars(
        select(Release).where(earlier, Release.bad_since.is_(None)).order_by(Release.id.desc())
    ).first()
