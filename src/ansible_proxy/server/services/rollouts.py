"""The operator's rollout commands: set a policy, promote, halt, resume, abort, the
emergency revert, and the fleet-wide freeze.

Each commits its change and then drops the in-memory answers (as services/releases.py
does), so no node is told anything the database does not hold.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Bin, Latest, Rollout
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.problems import BadRequest, Conflict
from ansible_proxy.server.rollouts import calendar, emergency, lifecycle, resuming, stored
from ansible_proxy.server.rollouts.calendar import Freeze
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.policy import Policy, PolicyError

ACTIONS = ("promote", "halt", "resume", "abort")


def set_policy(
    session: Session,
    pointers: PointerCache,
    bin_: Bin,
    arch: str | None,
    policy: Policy,
    now: datetime,
) -> None:
    """The bin's policy (for one arch, or every arch); it applies from the next publish."""
    stored.set_policy(session, bin_, arch, policy, now)
    session.commit()
    pointers.clear()


def _targets(session: Session, bin_: Bin, arch: str | None) -> list[Rollout]:
    """The newest rollout of each of the bin's arches (or of `arch`)."""
    arches = (
        [arch]
        if arch
        else sorted(set(session.scalars(select(Rollout.arch).where(Rollout.bin_id == bin_.id))))
    )
    found = [stored.latest_rollout(session, bin_.id, each) for each in arches]
    return [rollout for rollout in found if rollout is not None]


def freeze(session: Session, ctx: Context, until: str, reason: str, now: datetime) -> Freeze:
    """Freeze the fleet: no wave of any rollout starts before `until` (calendar.py)."""
    try:
        moment = calendar.parse_until(until, ctx.calendar())
    except PolicyError as exc:
        raise BadRequest(str(exc)) from None
    found = calendar.set_freeze(session, moment, reason, now)
    session.commit()
    return found


def unfreeze(session: Session, now: datetime) -> bool:
    """End the freeze; False when there was none (nothing changes then)."""
    ended = calendar.clear_freeze(session, now)
    session.commit()
    return ended


def revert(
    session: Session,
    pointers: PointerCache,
    ctx: Context,
    bin_: Bin,
    arch: str | None,
    reason: str,
    now: datetime,
) -> list[str]:
    """The emergency path: every node of each arch (or of `arch`) back to the last
    completed release at once (rollouts/emergency.py); one line per arch reverted."""
    arches = (
        [arch]
        if arch
        else sorted(set(session.scalars(select(Latest.arch).where(Latest.bin_id == bin_.id))))
    )
    done: list[str] = []
    refused: list[str] = []
    for each in arches:
        try:
            done.append(emergency.revert_now(session, ctx, bin_, each, reason, now))
        except Conflict as exc:
            if arch:
                raise
            refused.append(str(exc))
    if not done:
        raise Conflict("; ".join(refused) or f"{bin_.name} has no release to revert")
    session.commit()
    pointers.clear()
    return done + refused


def act(
    session: Session,
    pointers: PointerCache,
    ctx: Context,
    bin_: Bin,
    arch: str | None,
    action: str,
    now: datetime,
) -> list[str]:
    """Apply `action` to the bin's rollouts it fits; one line per rollout changed.

    promote: start the next wave now (a rolling rollout), or end a watch; halt: tell no more
    nodes;
    resume: go on after a halt (a reverted release is re-enabled; the members that hold it
    as bad are named, each with the command that lets it try again); abort: halt and revert.
    """
    done: list[str] = []
    skipped: list[str] = []
    for rollout in _targets(session, bin_, arch):
        label = f"{bin_.name} ({rollout.arch}) {rollout.release_sha[:12]}"
        if not _fits(rollout, action):
            skipped.append(
                f"{rollout.arch}: {rollout.state}{' and reverted' if rollout.reverted else ''}"
            )
            continue
        if not lifecycle.claim(session, rollout, now):
            raise Conflict("another request changed the same rollout at the same time: retry")
        if action == "promote":
            lifecycle.start_wave(session, ctx, rollout, bin_.name, now, "promoted by an operator")
            started = f"{wave_name(rollout.wave)} started"
            past = {"completed": "completed", "watching": "every wave started; now watched"}
            done.append(f"{label}: {past.get(rollout.state, started)}")
        elif action == "halt":
            lifecycle.halt(session, ctx, rollout, bin_, now, "halted by an operator", revert=False)
            done.append(f"{label}: halted; nodes keep what they were told")
        elif action == "abort":
            if rollout.state == "halted":
                lifecycle.revert_fleet(session, ctx, rollout, bin_, now)
            else:
                lifecycle.halt(
                    session, ctx, rollout, bin_, now, "aborted by an operator", revert=True
                )
            done.append(f"{label}: aborted; every node is told {rollout.previous_sha[:12]} again")
        else:
            held_bad = resuming.resume(session, ctx, rollout, bin_, now)
            done.append(f"{label}: resumed at {wave_name(rollout.wave)}")
            done.extend(held_bad)
    if not done:
        state = "; ".join(skipped) if skipped else "no rollout"
        which = f"{bin_.name} ({arch})" if arch else bin_.name
        raise Conflict(f"nothing to {action} for {which}: {state} ({_HINT[action]})")
    session.commit()
    pointers.clear()
    return done


_HINT = {
    "promote": "only a rolling rollout is promoted (a watched one ends its watch); resume a "
    "halted one first",
    "halt": "only a rolling rollout is halted",
    "resume": "only a halted rollout is resumed",
    "abort": "only a rolling, halted or watched rollout that was not reverted is aborted",
}


def _fits(rollout: Rollout, action: str) -> bool:
    if action == "promote":  # watching: ends the watch now
        return rollout.state in ("rolling", "watching")
    if action == "halt":
        return rollout.state == "rolling"
    if action == "resume":
        return rollout.state == "halted"
    return rollout.state in (*queries.ROLLOUT_ANSWERING, "watching") and not rollout.reverted
