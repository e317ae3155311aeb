"""`rollout status`: a bin's policy and, per arch, its newest rollout wave by wave."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.listings import iso
from ansible_proxy.server.db.models import (
    Bin,
    Latest,
    Node,
    NodeCredential,
    NodeHold,
    Rollout,
    RolloutMember,
    RolloutPolicy,
)
from ansible_proxy.server.db.queries import ROLLOUT_ANSWERING
from ansible_proxy.server.rollouts import (
    calendar,
    counts,
    eligible,
    heard,
    judge,
    quarantine,
    stored,
    watch,
    ways_out,
)
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.judge import Tally
from ansible_proxy.server.rollouts.policy import Policy, failure_limit

MAX_NODES_SHOWN = 200  # per wave; the counts are always whole
# A member's trouble (members.py) as its state: the host could not try the release, or
# refused it. Counted apart in each wave's `counts`, never among its failures.
TROUBLE_STATES = {"host": "host-trouble", "refused": "refused"}
PAST_THE_WAVES = ("watching", "completed")  # every wave was promoted


def _node_state(rollout: Rollout, member: Any, started: bool) -> str:
    """`member`: a row with RolloutMember's columns."""
    if member.failed_at is not None:
        return "failed"
    if not started:
        return "waiting"
    if member.baked_at is not None:
        return "healthy"
    if member.trouble is not None:  # not the release's failure: "host-trouble", "refused"
        return TROUBLE_STATES.get(str(member.trouble), "trouble")
    if member.offline:  # not heard (offline.py): never "healthy", even once completed
        return "offline"
    if rollout.state in PAST_THE_WAVES:
        return "healthy"
    if member.succeeded_at is not None:
        return "baking"
    return "upgrading"


def rollout_view(session: Session, ctx: Context, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """One rollout: its state, policy, and each wave's nodes, failures and bake remaining."""
    policy = stored.load_policy(rollout)
    m = RolloutMember
    bin_ = session.get(Bin, rollout.bin_id)
    bin_name = bin_.name if bin_ is not None else ""
    rows = session.execute(  # plain rows, not objects: a wave may hold thousands of nodes
        select(
            m.node_name, m.wave, m.offline, m.succeeded_at, m.baked_at, m.failed_at, m.reason,
            m.trouble, m.succeeded_heard, Node.last_seen,
            Node.name.label("known"), NodeCredential.revoked, NodeHold.reason.label("held"),
        )
        .outerjoin(Node, Node.name == m.node_name)
        .outerjoin(NodeCredential, NodeCredential.node_name == m.node_name)
        .outerjoin(NodeHold, (NodeHold.node_name == m.node_name) & (NodeHold.bin_name == bin_name))
        .where(m.rollout_id == rollout.id)
        .order_by(m.wave, m.node_name)
    ).all()  # fmt: skip
    live = rollout.state in ROLLOUT_ANSWERING
    held_bad = quarantine.quarantined(session, rollout) if live and not rollout.reverted else {}
    waves: list[dict[str, Any]] = [
        {
            "index": index,
            "name": wave_name(index),
            "nodes": [],
            "size": 0,
            "failures": 0,
            "counts": {},
        }
        for index in range(rollout.wave_count)
    ]
    bake = policy.bake_seconds
    clock = heard.read(session).now  # bakes count the heard clock (heard.py)
    for member in rows:
        seen = member.last_seen
        if member.wave >= len(waves):
            continue
        wave = waves[member.wave]
        started = member.wave <= rollout.wave or rollout.state in PAST_THE_WAVES
        state = _node_state(rollout, member, started)
        reason = member.reason
        never_ran = member.succeeded_at is None and member.baked_at is None
        if state != "failed" and ((live and state != "healthy") or (started and never_ran)):
            state, reason = _taking_part(member, state, reason)
            if state in ("upgrading", "refused") and member.node_name in held_bad:
                why = held_bad[member.node_name]
                state, reason = "quarantined", quarantine.state_reason(bin_name, rollout, why)
        wave["size"] += 1
        wave["counts"][state] = wave["counts"].get(state, 0) + 1
        wave["failures"] += state == "failed"
        remaining = None
        if state == "baking":
            baked_for = 0.0 if member.succeeded_heard is None else clock - member.succeeded_heard
            remaining = max(0, math.ceil(bake - baked_for))
        if len(wave["nodes"]) < MAX_NODES_SHOWN:
            wave["nodes"].append(
                {
                    "name": member.node_name,
                    "state": state,
                    "reason": reason,
                    "bakeRemaining": remaining,
                    "lastSeen": iso(seen) if seen else None,
                }
            )
    rolling = rollout.state == "rolling"
    last = rollout.wave_count - 1 if rollout.state in PAST_THE_WAVES else rollout.wave
    tallies = counts.tallies(session, rollout, last)
    for wave in waves:
        index = wave["index"]
        wave["failureLimit"] = failure_limit(policy, wave["size"]) if wave["size"] else None
        if rollout.state in PAST_THE_WAVES or index < rollout.wave:
            wave["state"] = "done"
        elif index == rollout.wave:
            wave["state"] = {"rolling": "active", "halted": "halted"}.get(
                rollout.state, rollout.state
            )
        else:
            wave["state"] = "waiting"
        baking = [
            node["bakeRemaining"] for node in wave["nodes"] if node["bakeRemaining"] is not None
        ]
        wave["bakeRemaining"] = max(baking) if baking and index == rollout.wave else None
        wave.update(_tally(policy, tallies.get(index), index == rollout.wave and rolling))
    is_paused = ways_out.paused(session, rollout)
    held = None
    if rollout.state == "rolling" and not is_paused:  # a wave that may not start now, and why
        held = calendar.held(session, rollout, policy, ctx.calendar())
    shown, left_count = ways_out.left_out(session, rollout)
    return {
        "id": rollout.id,
        "arch": rollout.arch,
        "state": rollout.state,
        "halted": rollout.state == "halted",
        "reverted": rollout.reverted,
        "release": rollout.release_sha,
        "previous": rollout.previous_sha,
        "policy": policy.to_dict(),
        "wave": rollout.wave,
        "waveCount": rollout.wave_count,
        "reason": rollout.reason,
        "startedAt": iso(rollout.started_at),
        "waveStartedAt": iso(rollout.wave_started_at),
        "updatedAt": iso(rollout.updated_at),
        "waves": waves,
        "paused": is_paused and live,
        "leftOut": shown,
        "leftOutCount": left_count,
        "stuck": ways_out.stuck_view(session, ctx, rollout, is_paused or bool(held), now),
        "revert": ways_out.reverted_view(session, rollout, bin_name),
        "watch": watch.watch_view(session, rollout),
        "held": held,
    }


def _tally(policy: Policy, tally: Tally | None, current: bool) -> dict[str, Any]:
    """A started wave's counts (counts.py, as the engine judges them), its wait limits, and
    for the current wave of a live rollout why it is not promoted (judge.py)."""
    if tally is None:
        return {"tally": None, "offlineLimit": None, "refusedLimit": None, "waitingFor": None}
    limit = judge.limits(policy, tally.size)
    judged = judge.judge(policy, tally)
    return {
        "tally": {
            "failed": tally.failed,
            "offline": tally.offline,
            "notInstalled": tally.not_installed,
            "refused": tally.refused,
            "hostTrouble": tally.host_trouble,
            "baking": tally.baking,
            "healthy": tally.healthy,
        },
        "offlineLimit": limit.offline,
        "refusedLimit": limit.refused,
        "waitingFor": judged.why if current and judged.verdict == "wait" else None,
    }


def _taking_part(member: Any, state: str, reason: str | None) -> tuple[str, str | None]:
    """A member skipped now (eligible.py) shows so: forgotten, revoked or held."""
    if member.known is None:
        return "forgotten", eligible.FORGOTTEN
    if member.revoked:
        return "revoked", eligible.REVOKED
    if member.held is not None:
        return "held", f"held: {member.held}"
    return state, reason


def bin_status(session: Session, ctx: Context, bin_: Bin, now: datetime) -> dict[str, Any]:
    """The bin's policies (its own, per arch, and the default) and its newest rollout per arch."""
    policies = {
        (row.arch or "*"): stored.policy_of_row(row).to_dict()
        for row in session.scalars(select(RolloutPolicy).where(RolloutPolicy.bin_id == bin_.id))
    }
    arches = set(session.scalars(select(Latest.arch).where(Latest.bin_id == bin_.id)))
    arches |= set(session.scalars(select(Rollout.arch).where(Rollout.bin_id == bin_.id)))
    rollouts = []
    for arch in sorted(arches):
        rollout = stored.latest_rollout(session, bin_.id, arch)
        if rollout is not None:
            rollouts.append(rollout_view(session, ctx, rollout, now))
    return {
        "binName": bin_.name,
        "paused": bin_.paused,
        "policies": policies,
        "defaultPolicy": ctx.default_policy.to_dict(),
        "rollouts": rollouts,
        "state": _overall(rollouts),
        "freeze": _freeze(session, ctx),
    }


def _freeze(session: Session, ctx: Context) -> dict[str, str] | None:
    """The fleet-wide freeze in force ({until, reason}), shown with every bin's status."""
    frozen = calendar.freeze_in_force(session, ctx.calendar())
    return None if frozen is None else frozen.shown()


def _overall(rollouts: list[dict[str, Any]]) -> str:
    """The bin's one-word state: halted beats rolling beats the rest."""
    states = {rollout["state"] for rollout in rollouts}
    for state in ("halted", "rolling", "watching", "completed", "superseded"):
        if state in states:
            return state
    return "none"
