"""The dashboard's staged rollouts: the bin page's Rollout section, the fleet page's rollout
badges, the Promote / Halt / Resume / Abort forms and the policy form (docs/bin-manager.md
"Rollouts").

What is shown comes from rollouts/status.py (as `bin-manager rollout status` shows it);
the forms are CSRF-checked admin actions (admin.admin_form) calling services/rollouts.py,
the same functions as the admin API (and the policy checked by the same make_policy): no
second implementation.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ansible_proxy.names import ARCHES
from ansible_proxy.server.dashboard.admin import admin_form
from ansible_proxy.server.dashboard.render import PREFIX, CurrentVisitor
from ansible_proxy.server.dashboard.view_types import (
    Badge,
    PolicyFormValues,
    RolloutSection,
    ScopedPolicy,
    ShownNode,
    ShownRollout,
    ShownWave,
)
from ansible_proxy.server.dashboard.views import ago
from ansible_proxy.server.db import listings, queries
from ansible_proxy.server.db.models import Bin
from ansible_proxy.server.deps import DbSession, Now, Pointers, Rollouts
from ansible_proxy.server.inputs import check_arch, check_bin_name
from ansible_proxy.server.problems import BadRequest, NotFound
from ansible_proxy.server.rollouts.context import Context, wave_name
from ansible_proxy.server.rollouts.options import format_duration
from ansible_proxy.server.rollouts.policy import Policy, PolicyError, make_policy
from ansible_proxy.server.rollouts.status import bin_status
from ansible_proxy.server.services import rollouts as service

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
NODES_SHOWN = 12  # per wave on the page; the counts above the list are always whole
MESSAGES = {
    "rollout-promote": "Rollout promoted: the next wave is told the new release.",
    "rollout-halt": "Rollout halted: no more nodes are told the new release.",
    "rollout-resume": "Rollout resumed from its current wave.",
    "rollout-abort": "Rollout aborted: every node is told the previous release again.",
    "rollout-policy": "Rollout policy set: it applies from the next publish.",
}
# Failed nodes first: on a capped list the reasons of a halt are what must not be cut off.
_NODE_ORDER = {
    "failed": 0,
    "quarantined": 1,
    "refused": 2,
    "host-trouble": 3,
    "offline": 4,
    "held": 5,
    "revoked": 6,
    "forgotten": 7,
    "upgrading": 8,
    "baking": 9,
    "healthy": 10,
    "waiting": 11,
}
_WAVE_STATES = {
    "done": ("done", "ok"),
    "active": ("in progress", "info"),
    "halted": ("halted", "bad"),
    "waiting": ("not started", "muted"),
}


def duration(seconds: int | None) -> str:
    """'1 h 5 min', '4 min 10 s', '7 s' (two units at most); '' for None."""
    if seconds is None:
        return ""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts[:2]) or "0 s"


def progress_text(state: str, wave: int, wave_count: int, reverted: bool) -> str:
    """A rollout's state in a few words: 'rolling: wave 1 of 2' (waves after the canary)."""
    if state == "rolling":
        if wave < 0:
            return "rolling: waiting to start"
        return "rolling: the canary" if wave == 0 else f"rolling: wave {wave} of {wave_count - 1}"
    if state == "halted":
        return "halted and reverted" if reverted else "halted"
    if state == "watching":
        return "watching after every wave"
    return state


def policy_text(policy: dict[str, Any]) -> str:
    """A policy (Policy.to_dict) in words: 'canary 1 node, then 50%, 100% of the fleet; …'."""
    if policy.get("immediate"):
        return "immediate: every node is told a new release at once"
    canary = str(policy["canary"])
    chosen = [f"the nodes {policy['canaryNodes']}"] if policy.get("canaryNodes") else []
    chosen += [f"the nodes labelled {policy['canaryLabel']}"] if policy.get("canaryLabel") else []
    who = " and ".join(chosen) or None
    first = who or (f"{canary} of the nodes" if canary.endswith("%") else f"{canary} node(s)")
    shares = ", ".join(str(policy["waves"]).split(","))
    limit = str(policy["maxFailures"])
    failures = f"{limit} of a wave's nodes" if limit.endswith("%") else f"{limit} node(s)"
    bake = duration(int(policy["bakeSeconds"]))
    waits = [
        f"more than {policy[key]} of its nodes {what}"
        for key, what in (("maxOffline", "offline"), ("maxRefused", "refusing it"))
        if policy.get(key) is not None
    ]
    return (
        f"canary {first}, then {shares} of the fleet; each wave bakes {bake}; "
        f"a wave halts the rollout (and reverts it) when {failures} fail"
        + (f"; it waits with {' or '.join(waits)}" if waits else "")
        + (
            f"; watched {duration(watch)} after every wave"
            if (watch := policy.get("watchSeconds"))
            else ""
        )
        + (f"; waves start only {windows}" if (windows := policy.get("windows")) else "")
    )


def policy_cli(policy: dict[str, Any]) -> str:
    """The same policy in `bin-manager rollout set`'s words."""
    return str(policy["describe"])


def policy_form(policies: dict[str, dict[str, Any]], default: dict[str, Any]) -> PolicyFormValues:
    """The policy form's first values: the bin's every-arch policy, else its first per-arch
    one, else the server's default (policies as Policy.to_dict gives them, by arch or '*')."""
    scope, policy = min(policies.items()) if policies else ("*", default)  # '*' sorts first
    bake = policy.get("bakeSeconds")
    return {
        "arches": ARCHES,
        "arch": "" if scope == "*" else scope,
        "immediate": bool(policy.get("immediate")),
        "canary": policy.get("canary") or "",
        "waves": policy.get("waves") or "",
        "bake": "" if bake is None else str(bake),
        "maxFailures": policy.get("maxFailures") or "",
        "canaryLabel": policy.get("canaryLabel") or "",
        "canaryNodes": policy.get("canaryNodes") or "",
        "maxOffline": policy.get("maxOffline") or "",
        "maxRefused": policy.get("maxRefused") or "",
        "watch": format_duration(policy["watchSeconds"]) if policy.get("watchSeconds") else "",
        "window": policy.get("windows") or "",
    }


def form_policy(
    mode: str,
    canary: str,
    waves: str,
    bake: str,
    max_failures: str,
    canary_label: str,
    canary_nodes: str = "",
    max_offline: str = "",
    max_refused: str = "",
    watch: str = "",
    window: str = "",
) -> Policy:
    """The policy the form asks for, checked by make_policy as the API's are; an empty field
    is an option not given. 'immediate' ignores the staged fields (the form keeps them)."""
    if mode == "immediate":
        return make_policy(immediate=True)
    if mode != "staged":
        raise PolicyError(f"mode {mode!r:.40}: choose immediate or staged")

    def given(text: str) -> str | None:
        return text.strip() or None

    return make_policy(
        canary=given(canary),
        waves=given(waves),
        bake=given(bake),
        max_failures=given(max_failures),
        canary_label=given(canary_label),
        canary_nodes=given(canary_nodes),
        max_offline=given(max_offline),
        max_refused=given(max_refused),
        watch=given(watch),
        window=given(window),
    )


def _actions(rollout: dict[str, Any]) -> list[str]:
    """The buttons that apply (as services/rollouts.py decides what fits)."""
    state, reverted = rollout["state"], rollout["reverted"]
    actions = ["promote", "halt"] if state == "rolling" else []
    actions += ["promote"] if state == "watching" else []
    if state == "halted":
        actions.append("resume")
    if state in (*queries.ROLLOUT_ANSWERING, "watching") and not reverted:
        actions.append("abort")
    return actions


def _wave(wave: dict[str, Any]) -> ShownWave:
    label, tone = _WAVE_STATES.get(wave["state"], (wave["state"], "muted"))
    if wave["state"] == "done" and set(wave["counts"]) - {"healthy", "failed"}:
        label, tone = "promoted", "info"  # passed on (by an operator) before all baked
    nodes = sorted(wave["nodes"], key=lambda node: _NODE_ORDER.get(node["state"], 9))
    shown: list[ShownNode] = [
        {"name": node["name"], "state": node["state"], "reason": node["reason"],
         "bakeRemaining": node["bakeRemaining"], "lastSeen": node.get("lastSeen"),
         "bake": duration(node["bakeRemaining"])}
        for node in nodes[:NODES_SHOWN]
    ]  # fmt: skip
    limit = wave["failureLimit"]
    counts = ", ".join(
        f"{n} {state}"
        for state, n in sorted(wave["counts"].items(), key=lambda item: _NODE_ORDER.get(item[0], 9))
    )
    return {
        "name": wave["name"],
        "state": wave["state"],
        "label": label,
        "tone": tone,
        "size": wave["size"],
        "counts": counts,
        "failures": wave["failures"],
        "failureLimit": limit,
        "failTone": "bad" if limit and wave["failures"] >= limit else "warn",
        "bake": duration(wave["bakeRemaining"]),
        "nodes": shown,
        "more": wave["size"] - len(shown),
        "offline": _limited(wave, "offline", "offlineLimit"),
        "notInstalled": str(wave["tally"]["notInstalled"]) if wave.get("tally") else "",
        "refused": _limited(wave, "refused", "refusedLimit"),
        "waitingFor": wave.get("waitingFor"),
    }


def _limited(wave: dict[str, Any], count: str, limit: str) -> str:
    """'1 / 2' (offline of those allowed), '0 / any' for no limit; '' for a wave not started."""
    tally = wave.get("tally")
    if not tally:
        return ""
    allowed = wave.get(limit)
    return f"{tally[count]} / {'any' if allowed is None else allowed}"


def shape_rollout(rollout: dict[str, Any], now: datetime) -> ShownRollout:
    """What the page shows of one rollout (given in rollouts/status.py's shape)."""
    state = rollout["state"]
    tone = {"rolling": "info", "watching": "info", "halted": "bad", "completed": "ok"}.get(
        state, "muted"
    )
    following = rollout["wave"] + 1
    return {
        "arch": rollout["arch"],
        "state": state,
        "tone": tone,
        "label": progress_text(state, rollout["wave"], rollout["waveCount"], rollout["reverted"]),
        "halted": rollout["halted"],
        "reverted": rollout["reverted"],
        "release": rollout["release"],
        "previous": rollout["previous"],
        "reason": rollout["reason"],
        "startedAt": rollout["startedAt"],
        "startedAgo": ago(datetime.fromisoformat(rollout["startedAt"].rstrip("Z")), now),
        "policyCli": policy_cli(rollout["policy"]),
        "actions": _actions(rollout),
        # What Promote does: start the next wave, or complete after the last one.
        "promotes": wave_name(following) if following < rollout["waveCount"] else None,
        "waves": [_wave(wave) for wave in rollout["waves"]],
        "paused": rollout.get("paused", False),
        "stuck": rollout.get("stuck"),
        "leftOut": (rollout.get("leftOut") or [])[:NODES_SHOWN],
        "leftOutMore": rollout.get("leftOutCount", 0)
        - min(len(rollout.get("leftOut") or []), NODES_SHOWN),
        "revert": rollout.get("revert"),
        "watch": rollout.get("watch"),
        "held": rollout.get("held"),
    }


def bin_rollouts(session: Session, ctx: Context, bin_: Bin, now: datetime) -> RolloutSection:
    """The bin page's Rollout section: the policies in force and each arch's newest rollout."""
    status = bin_status(session, ctx, bin_, now)
    policies: list[ScopedPolicy] = [
        {
            "scope": "every arch" if scope == "*" else f"{scope} only",
            "text": policy_text(policy),
            "cli": policy_cli(policy),
        }
        for scope, policy in sorted(status["policies"].items())
    ]
    default = status["defaultPolicy"]
    return {
        "policies": policies,
        "default": {"text": policy_text(default), "cli": policy_cli(default)},
        "form": policy_form(status["policies"], default),
        "rollouts": [shape_rollout(rollout, now) for rollout in status["rollouts"]],
        "freeze": status.get("freeze"),
    }


def fleet_badges(session: Session) -> dict[str, list[Badge]]:
    """Per bin, a badge for each arch whose newest rollout is rolling or halted."""
    badges: dict[str, list[Badge]] = {}
    for name, arch, state, wave, wave_count, reverted in listings.newest_rollouts(session):
        if state not in queries.ROLLOUT_ANSWERING:
            continue
        text = progress_text(state, wave, wave_count, reverted)
        tone = "bad" if state == "halted" else "info"
        badges.setdefault(name, []).append({"arch": arch, "text": text, "tone": tone})
    return badges


@router.post(PREFIX + "/bins/{bin_name}/rollout/{action}")
def rollout_action(
    bin_name: str,
    action: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    ctx: Rollouts,
    now: Now,
    arch: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        if action not in service.ACTIONS:
            raise NotFound("no such rollout action: promote, halt, resume or abort")
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        canonical = check_arch(arch) if arch.strip() else None
        done = service.act(session, pointers, ctx, bin_, canonical, action, now)
        log.info("dashboard: rollout %s: %s", action, "; ".join(done))
        return f"{PREFIX}/bins/{quote(bin_.name)}?done=rollout-{action}"

    return admin_form(visitor, csrf, act)


@router.post(PREFIX + "/bins/{bin_name}/rollout-policy")
def rollout_policy(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    arch: Annotated[str, Form(max_length=64)] = "",
    mode: Annotated[str, Form(max_length=16)] = "",
    canary: Annotated[str, Form(max_length=16)] = "",
    waves: Annotated[str, Form(max_length=128)] = "",
    bake: Annotated[str, Form(max_length=16)] = "",
    max_failures: Annotated[str, Form(max_length=16)] = "",
    canary_label: Annotated[str, Form(max_length=160)] = "",
    canary_nodes: Annotated[str, Form(max_length=16_000)] = "",
    max_offline: Annotated[str, Form(max_length=16)] = "",
    max_refused: Annotated[str, Form(max_length=16)] = "",
    watch: Annotated[str, Form(max_length=16)] = "",
    window: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        # In the API's order (api/rollouts.set_policy): name, arch, policy, then the bin.
        name = check_bin_name(bin_name)
        canonical = check_arch(arch) if arch.strip() else None
        try:
            policy = form_policy(
                mode, canary, waves, bake, max_failures, canary_label, canary_nodes,
                max_offline, max_refused, watch, window,
            )  # fmt: skip
        except PolicyError as exc:
            raise BadRequest(str(exc)) from None
        bin_ = queries.require_bin(session, name)
        service.set_policy(session, pointers, bin_, canonical, policy, now)
        scope = f" ({canonical} only)" if canonical else ""
        log.info("dashboard: rollout policy of %s set: %s%s", bin_.name, policy.describe(), scope)
        return f"{PREFIX}/bins/{quote(bin_.name)}?done=rollout-policy"

    return admin_form(visitor, csrf, act)
