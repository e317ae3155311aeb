"""Every change of a rollout's state: start (at a publish), promote, halt, revert, resume,
complete, supersede. None commits: the caller commits, then clears the read caches.

Each change that two server processes could both make (the background check runs in
every process, replicas share the database) first claims the rollout's revision with a
guarded UPDATE (`claim`): only the process whose UPDATE matched goes on, so a wave is
promoted once, a halt is announced once. Every step is an Event (the activity log) and a
webhook notification queued in the same transaction (server/webhooks/).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, insert, select, update
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
from ansible_proxy.server.db.secrets import ROLLOUT_ORDER, server_secret
from ansible_proxy.server.problems import Conflict, NotFound
from ansible_proxy.server.rollouts import eligible, heard, quarantine, reverts, stored, superseding
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.policy import (
    plan_waves,
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
    policy, _ = stored.effective_policy(session, ctx, bin_.id, arch)
    if policy.immediate:
        return None
    found = eligible.fleet(session, bin_, arch, ctx.stale_seconds)
    nodes = found.members
    labels = {name: node.labels for name, node in nodes.items()}
    waves = plan_waves(bin_.name, labels, policy, server_secret(session, ROLLOUT_ORDER, now))
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
        wave=0,
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
    canary = ", ".join(waves[0][:5]) + (
        f" and {len(waves[0]) - 5} more" if len(waves[0]) > 5 else ""
    )
    sizes = "+".join(str(len(names)) for names in waves)
    text = (
        f"rollout of {release.sha256[:12]} started ({policy.describe()}): {len(waves)} waves "
        f"({sizes} nodes), the canary {canary}; every other node stays on {good[:12]}"
        f"{_paused_note(bin_, release.sha256)}{eligible.left_out_note(found.left_out)}"
    )
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
    old = stored.open_rollout(session, bin_.id, arch)
    if old is not None:
        supersede(session, ctx, old, bin_.name, f"ended by the pin of {release.sha256[:12]}", now)
    release.bad_since = None


# -- changes of state ----------------------------------------------------------------


def start_wave(
    session: Session, ctx: Context, rollout: Rollout, bin_name: str, now: datetime, why: str
) -> None:
    """The next wave starts (or the rollout completes after its last)."""
    if rollout.wave + 1 >= rollout.wave_count:
        rollout.state = "completed"
        rollout.reason = None
        text = f"rollout of {rollout.release_sha[:12]} completed: every wave is healthy ({why})"
        step(session, ctx, rollout, bin_name, "rollout-complete", "rollout-completed", text, now)
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
    session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime
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
        f"reverted: every node is told {rollout.previous_sha[:12]} again; "
        f"{rollout.release_sha[:12]} is marked bad and is not offered again"
        f"{reverts.way_back_note(session, rollout)}"
    )
    step(session, ctx, rollout, bin_.name, "rollout-revert", "rollout-reverted", text, now)


def resume(session: Session, ctx: Context, rollout: Rollout, bin_: Bin, now: datetime) -> list[str]:
    """Go on from the current wave; a reverted release is re-enabled and its failures forgiven.

    Lines about the members that hold the release as bad on their host (quarantine.py): they
    will not try it again until a person lets them, with the command to do so."""
    if rollout.reverted:
        release = queries.find_release(session, bin_, rollout.release_sha, rollout.arch)
        if release is None:
            raise NotFound(f"the release {rollout.release_sha} of {bin_.name} is gone")
        release.bad_since = None
        rollout.reverted = False
        queries.point_latest(session, bin_, rollout.arch, release, now)
        # The revert moved every member back, on the server's order: none of that is a
        # node's failure ("went back"), and the current wave installs and bakes again.
        this_wave = RolloutMember.wave == rollout.wave
        session.execute(
            update(RolloutMember)
            .where(RolloutMember.rollout_id == rollout.id)
            .values(
                succeeded_at=None,
                succeeded_heard=None,
                baked_at=case((this_wave, None), else_=RolloutMember.baked_at),
            )
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(RolloutMember)
        .where(RolloutMember.rollout_id == rollout.id, RolloutMember.failed_at.is_not(None))
        .values(failed_at=None, succeeded_at=None, succeeded_heard=None, baked_at=None, reason=None)
        .execution_options(synchronize_session=False)
    )
    rollout.state = "rolling"
    rollout.reason = None
    rollout.wave_started_at = now
    rollout.wave_heard = None
    rollout.stuck_at = None
    reverts.carry_running(session, rollout, now)
    started = (RolloutMember.rollout_id == rollout.id) & (RolloutMember.wave <= rollout.wave)
    reverts.note_running(session, rollout, started & (RolloutMember.succeeded_at.is_(None)))
    held_bad = quarantine.quarantined(session, rollout)
    text = f"resumed at {wave_name(rollout.wave)}: its failures are forgiven"
    if held_bad:
        text += (
            f"; {len(held_bad)} node(s) hold {rollout.release_sha[:12]} as bad and will not "
            f"try it until `{quarantine.forget_command(bin_.name, rollout.release_sha)}` is "
            f"run on them: {', '.join(sorted(held_bad)[:5])}"
        )
    step(session, ctx, rollout, bin_.name, "rollout-resume", None, text, now)
    return quarantine.resume_lines(bin_.name, rollout, held_bad)
