"""A halted rollout goes on (`rollout resume`): from its current wave, its failures
forgiven; a reverted release is re-enabled. Members that hold the release as bad on their
host are named, with the command that lets each try again (quarantine.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Bin, Rollout, RolloutMember
from ansible_proxy.server.problems import NotFound
from ansible_proxy.server.rollouts import quarantine, reverts
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.lifecycle import step


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
