"""Every change of a rollout's state: start (at a publish), promote, watch, halt, revert,
complete, supersede (resuming.py: resume). None commits: the caller commits, then clears
the read caches.

Each change that two server processes could both make (the background check runs in
every process, replicas share the database) first claims the rollout's revision with a
guarded UPDATE (`claim`): only the process whose UPDATE matched goes on, so a wave is
promoted once, a halt is announced once. Every step is an Event (the activity log) and a
webhook notification queued in the same transaction (server/webhooks/).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import (
    Bin,
    Event,
    Node,
    Release,
    Rollout,
    RolloutLeftOut,
    RolloutMember,
)
from ansible_proxy.server.problems import Conflict, NotFound
from ansible_proxy.server.rollouts import (
    calendar,
    eligible,
    heard,
    planning,
    reverts,
    stored,
    superseding,
)
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.options import format_duration
from ansible_proxy.server.rollouts.policy import (
    policy_to_json,
)


def step(
    session: Session,
    ctx: Context,
    rollout: Rollout,
    bin_name: str,
    kind: str,
    webhook: str | None,
    text: str,
    now: datetime,
) -> None:
    """One step in the activity log (`text` as its detail) and, when `webhook`, notified."""
    session.add(
        Event(
            at=now,
            kind=kind,
            bin_name=bin_name,
            arch=rollout.arch,
            sha256=rollout.release_sha,
            detail=text[:300],
        )
    )
    if webhook is not None:
        data = {
            "binName": bin_name,
            "arch": rollout.arch,
            "release": rollout.release_sha,
            "previous": rollout.previous_sha,
            "wave": rollout.wave,
            "waveCount": rollout.wave_count,
            "state": rollout.state,
            "reverted": rollout.reverted,
        }
        ctx.notify(session, webhook, f"{bin_name} ({rollout.arch}): {text}", data, now)


def claim(session: Session, rollout: Rollout, now: datetime) -> bool:
    """Take the rollout's next revision; False when another process changed it first."""
    result = session.execute(
        update(Rollout)
        .where(Rollout.id == rollout.id, Rollout.revision == rollout.revision)
        .values(revision=rollout.revision + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return False
    rollout.revision += 1
    rollout.updated_at = now
    return True


# -- policies ------------------------------------------------------------------------


# -- start and end -------------------------------------------------------------------


def refuse_bad(release: Release | None, bin_name: str) -> None:
    """A release reverted fleet-wide is not published again until an operator re-enables it."""
    if release is not None and release.bad_since is not None:
        raise Conflict(
            f"release {release.sha256} of {bin_name} ({release.arch}) was reverted fleet-wide "
            f"as bad at {release.bad_since:%Y-%m-%d %H:%M:%S} UTC: re-enable it with "
            f"`bin-manager rollout resume {bin_name}` or `bin-manager pin`"
        )


def on_publish(
    session: Session,
    ctx: Context,
    bin_: Bin,
    arch: str,
    release: Release,
    previous_sha: str | None,
    now: datetime,
) -> Rollout | None:
    """Start the rollout of a just-published release (the caller made it the latest).

    A bin's first release for an arch, and a bin with an immediate policy, go to every
    node at once: with nothing installed there is nothing to protect nor to revert to.
    """
    good = previous_sha
    _end_watch(session, ctx, bin_, arch, f"the publish of {release.sha256[:12]}", now)
    old = stored.open_rollout(session, bin_.id, arch)
    if old is not None:
        if old.release_sha == release.sha256 and not old.reverted:
            return old  # the same content published again: its rollout goes on
        if not old.reverted:
            # The superseded release was not proven good: the previous good one stays the
            # answer of every node outside the new rollout's started waves.
            good = old.previous_sha
        ended = superseding.superseded(session, old).describe()
        why = f"superseded by the publish of {release.sha256[:12]}: {ended}"
        supersede(session, ctx, old, bin_.name, why, now)
    if good is None or good == release.sha256:
        return None
    found = planning.plan(session, ctx, bin_, arch, now)  # as `rollout plan` shows it
    policy, waves, nodes = found.policy, found.waves, found.members
    if policy.immediate:
        return None
    if not waves:
        return None  # no node runs the bin yet (or none can take part): nothing to stage
    rollout = Rollout(
        bin_id=bin_.id,
        arch=arch,
        release_sha=release.sha256,
        previous_sha=good,
        policy=policy_to_json(policy),
        state="rolling",
        reverted=False,
        wave=-1,  # the canary starts below, unless its window is closed or the fleet frozen
        wave_count=len(waves),
        wave_started_at=now,
        revision=0,
        started_at=now,
        updated_at=now,
    )
    session.add(rollout)
    session.flush()
    heard_after = heard.read(session).now - ctx.silent_seconds

    def silent(name: str) -> bool:
        seen = nodes[name].heard
        return seen is None or seen < heard_after

    rows = [
        {
            "rollout_id": rollout.id,
            "node_name": name,
            "wave": index,
            "offline": index == 0 and silent(name),
            "before_sha": nodes[name].running,
        }
        for index, names in enumerate(waves)
        for name in names
    ]
    session.execute(insert(RolloutMember), rows)  # one executemany: fleets are large
    if found.left_out:
        session.execute(
            insert(RolloutLeftOut),
            [
                {"rollout_id": rollout.id, "node_name": name, "reason": why[:300]}
                for name, why in found.left_out.items()
            ],
        )
    waits = calendar.held(session, rollout, policy, ctx.calendar())
    if waits is None:
        rollout.wave = 0
    canary = ", ".join(waves[0][:5]) + (
        f" and {len(waves[0]) - 5} more" if len(waves[0]) > 5 else ""
    )
    sizes = "+".join(str(len(names)) for names in waves)
    text = (
        f"rollout of {release.sha256[:12]} started ({policy.describe()}): {len(waves)} waves "
        f"({sizes} nodes), the canary {canary}; every other node stays on {good[:12]}"
        f"{_paused_note(bin_, release.sha256)}{eligible.left_out_note(found.left_out)}"
    )
    if waits:
        text += f"; it waits, {waits}: no node is told {release.sha256[:12]} until then"
    step(session, ctx, rollout, bin_.name, "rollout-start", "rollout-started", text, now)
    return rollout


def _paused_note(bin_: Bin, sha256: str) -> str:
    if not bin_.paused:
        return ""
    return f" ({bin_.name} is paused: no node is told {sha256[:12]} until it is resumed)"


def supersede(
    session: Session, ctx: Context, rollout: Rollout, bin_name: str, why: str, now: datetime
) -> None:
    """End an answering rollout because the latest changed under it (publish, pin)."""
    rollout.state = "superseded"
    rollout.reason = why[:300]
    rollout.revision += 1
    rollout.updated_at = now
    step(session, ctx, rollout, bin_name, "rollout-superseded", None, why, now)


def on_pin(
    session: Session, ctx: Context, bin_: Bin, arch: str, release: Release, now: datetime
) -> None:
    """A pin is the emergency brake: it ends the rollout and re-enables a release marked bad."""
    _end_watch(session, ctx, bin_, arch, f"the pin of {release.sha256[:12]}", now)
    old = stored.open_rollout(session, bin_.id, arch)
    if old is not None:
        supersede(session, ctx, old, bin_.name, f"ended by the pin of {release.sha256[:12]}", now)
    release.bad_since = None


def _end_watch(
    session: Session, ctx: Context, bin_: Bin, arch: str, by: str, now: datetime
) -> None:
    """A publish or a pin ends the watch of the rollout before (its release is no longer
    the one every node is told)."""
    found = stored.latest_rollout(session, bin_.id, arch)
    if found is not None and found.state == "watching":
        supersede(session, ctx, found, bin_.name, f"its watch was ended by {by}", now)


# -- changes of state ----------------------------------------------------------------


def start_wave(
    session: Session, ctx: Context, rollout: Rollout, bin_name: str, now: datetime, why: str
) -> None:
    """The next wave starts; after the last, the rollout is watched (`--watch`, watch.py)
    or completes, and a watch ended early (`rollout promote`) completes."""
    if rollout.wave + 1 >= rollout.wave_count:
        if rollout.state == "watching":
            complete(session, ctx, rollout, bin_name, now, f"its watch ended early ({why})")
            return
        watch = stored.load_policy(rollout).watch_seconds
        if not watch:
            complete(session, ctx, rollout, bin_name, now, f"every wave is healthy ({why})")
            return
        rollout.state = "watching"
        rollout.reason = None
        rollout.wave_heard = heard.read(session).now  # the watch counts on the heard clock
        rollout.stuck_at = None
        text = (
            f"every wave of {rollout.release_sha[:12]} is healthy ({why}): watched for "
            f"{format_duration(watch)} before it completes; a failure of the release meanwhile "
            "halts it and reverts the fleet"
        )
        step(session, ctx, rollout, bin_name, "rollout-watch", "rollout-watching", text, now)
        return
    rollout.wave += 1
    rollout.wave_started_at = now
    rollout.wave_heard = None  # the next check starts the wave's bake on the heard clock
    rollout.stuck_at = None
    heard_after = heard.read(session).now - ctx.silent_seconds
    this_wave = (RolloutMember.rollout_id == rollout.id) & (RolloutMember.wave == rollout.wave)
    seen = select(Node.name).where(Node.heard >= heard_after)
    session.execute(
        update(RolloutMember)
        .where(this_wave)
        .values(offline=RolloutMember.node_name.not_in(seen))
        .execution_options(synchronize_session=False)
    )
    reverts.note_running(session, rollout, this_wave)
    size, offline = session.execute(
        select(func.count(), func.count().filter(RolloutMember.offline.is_(True))).where(this_wave)
    ).one()
    note = f", {offline} of them offline (told when they come back)" if offline else ""
    told = f"{size} nodes told {rollout.release_sha[:12]}"
    bin_ = session.get(Bin, rollout.bin_id)
    if bin_ is not None and bin_.paused:  # nobody is told anything new until the resume
        text = (
            f"{wave_name(rollout.wave)} started while {bin_name} is paused: none of its "
            f"{size} nodes is told {rollout.release_sha[:12]} until it is resumed ({why})"
        )
    else:
        text = f"{wave_name(rollout.wave)} started: {told}{note} ({why})"
    step(session, ctx, rollout, bin_name, "rollout-promote", "wave-promoted", text, now)


def complete(
    session: Session, ctx: Context, rollout: Rollout, bin_name: str, now: datetime, why: str
) -> None:
    """The rollout is done: its release stays the latest, nothing judges it any more."""
    rollout.state = "completed"
    rollout.reason = None
    text = f"rollout of {rollout.release_sha[:12]} completed: {why}"
    step(session, ctx, rollout, bin_name, "rollout-complete", "rollout-completed", text, now)


def halt(
    session: Session,
    ctx: Context,
    rollout: Rollout,
    bin_: Bin,
    now: datetime,
    reason: str,
    *,
    revert: bool,
) -> None:
    """Stop telling more nodes; with `revert`, every node is told the previous release again.

    A revert makes the previous release the latest again (so the reverted one is withdrawn:
    db/withdrawn.py) and marks the reverted release bad: not offered again until an
    operator resumes the rollout or pins it.
    """
    rollout.state = "halted"
    rollout.reason = reason[:300]
    rollout.stuck_at = None
    step(
        session, ctx, rollout, bin_.name, "rollout-halt", "rollout-halted", f"halted: {reason}", now
    )
    if revert:
        revert_fleet(session, ctx, rollout, bin_, now)


def revert_fleet(
    session: Session,
    ctx: Context,
    rollout: Rollout,
    bin_: Bin,
    now: datetime,
    because: str | None = None,
) -> None:
    release = queries.find_release(session, bin_, rollout.release_sha, rollout.arch)
    previous = queries.find_release(session, bin_, rollout.previous_sha, rollout.arch)
    if previous is None:
        raise NotFound(
            f"the previous release {rollout.previous_sha} of {bin_.name} is gone: pin another one"
        )
    rollout.reverted = True
    if release is not None:
        release.bad_since = now
    queries.point_latest(session, bin_, rollout.arch, previous, now)
    reverts.keep_way_back(session, rollout)
    text = (
        f"{because or 'reverted'}: every node is told {rollout.previous_sha[:12]} again; "
        f"{rollout.release_sha[:12]} is marked bad and is not offered again"
        f"{reverts.way_back_note(session, rollout)}"
    )
    step(session, ctx, rollout, bin_.name, "rollout-revert", "rollout-reverted", text, now)
