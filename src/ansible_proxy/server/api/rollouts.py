"""Staged rollouts under /api/v1/admin (admin token): the policy, status and the
operator's commands (docs/bin-manager.md "Rollouts"). Thin: server/services/rollouts.py
makes the changes, server/rollouts/status.py reads them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from ansible_proxy.protocol import API_PREFIX, Envelope, is_one_line, ok
from ansible_proxy.server.api.rollout_answers import (
    ActionDone,
    BinRollouts,
    FreezeState,
    PolicySet,
    RolloutPlan,
)
from ansible_proxy.server.audit import trail
from ansible_proxy.server.auth.authorize import authorize
from ansible_proxy.server.db import queries
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    BinName,
    DbSession,
    Now,
    Pointers,
    Rollouts,
    error_answer,
)
from ansible_proxy.server.inputs import check_arch
from ansible_proxy.server.problems import BadRequest
from ansible_proxy.server.rollouts import calendar, planning
from ansible_proxy.server.rollouts.calendar import Freeze
from ansible_proxy.server.rollouts.policy import PolicyError, make_policy
from ansible_proxy.server.rollouts.status import bin_status
from ansible_proxy.server.services import rollouts

router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["rollouts"],
    dependencies=[Depends(authorize)],
    responses={**ERROR_RESPONSES, 409: error_answer("Not in that state")},
)


class PolicyRequest(BaseModel):
    """PUT /admin/bins/{bin}/rollout/policy: `rollout set`'s options (all but `arch`,
    `canaryLabel` and `canaryNodes` required unless `immediate`)."""

    model_config = ConfigDict(extra="forbid")

    arch: str | None = Field(default=None, max_length=64, description="only this arch")
    immediate: bool = False
    canary: str | None = Field(default=None, max_length=16, description="N or P%")
    waves: str | None = Field(default=None, max_length=128, description="P%,P%,… of the fleet")
    bakeSeconds: int | None = Field(default=None, ge=0)
    maxFailures: str | None = Field(default=None, max_length=16, description="N or P% a wave")
    canaryLabel: str | None = Field(
        default=None, max_length=160, description="k=v (an admin's label) or reported:k=v"
    )
    canaryNodes: str | None = Field(default=None, max_length=16_000, description="a,b: names")
    maxOffline: str | None = Field(
        default=None, max_length=16, description="N or P% of a wave offline: more, it waits"
    )
    maxRefused: str | None = Field(
        default=None, max_length=16, description="N or P% of a wave refusing: more, it waits"
    )
    watchSeconds: int | None = Field(
        default=None, ge=0, description="after the last wave, still judged this long"
    )
    window: str | None = Field(
        default=None, max_length=2000, description="when waves may start: DAYS HH:MM-HH:MM ZONE"
    )


class ActionRequest(BaseModel):
    """POST /admin/bins/{bin}/rollout/{action}: every arch, or only `arch`; a revert says
    why (`reason`: one line, required)."""

    model_config = ConfigDict(extra="forbid")

    arch: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=300, description="revert: why")


Action = Annotated[
    str,
    Path(
        description="promote, halt, resume, abort, or revert (every node at once)",
        pattern="^(promote|halt|resume|abort|revert)$",
    ),
]


def _arch(arch: str | None) -> str | None:
    return check_arch(arch) if arch and arch.strip() else None


@router.get(
    "/bins/{bin_name:path}/rollout",
    response_model=Envelope[BinRollouts],
    summary="A bin's rollout policy and its rollouts, wave by wave",
)
def status(name: BinName, session: DbSession, ctx: Rollouts, now: Now) -> dict[str, Any]:
    return ok(bin_status(session, ctx, queries.require_bin(session, name), now))


@router.get(
    "/bins/{bin_name:path}/rollout/plan",
    response_model=Envelope[RolloutPlan],
    summary="Which nodes a publish would tell in which wave, and when at the earliest",
)
def plan(
    name: BinName, session: DbSession, ctx: Rollouts, now: Now, arch: str | None = None
) -> dict[str, Any]:
    """For the bin's policy and fleet now (the same ordering a publish uses); nothing changes."""
    bin_ = queries.require_bin(session, name)
    return ok(planning.plan_view(session, ctx, bin_, _arch(arch), now))


class FreezeRequest(BaseModel):
    """PUT /admin/freeze: until when (`2026-12-27T00:00Z`, or `48h` from now), and why."""

    model_config = ConfigDict(extra="forbid")

    until: str = Field(max_length=64, description="a moment with its zone, or a duration")
    reason: str = Field(max_length=300, description="one line: shown with every rollout")


def _freeze_state(frozen: Freeze | None) -> dict[str, Any]:
    if frozen is None:
        return {"frozen": False, "until": None, "reason": None}
    return {"frozen": True, **frozen.shown()}


@router.get("/freeze", response_model=Envelope[FreezeState], summary="The fleet-wide freeze")
def freeze_state(session: DbSession, ctx: Rollouts) -> dict[str, Any]:
    return ok(_freeze_state(calendar.freeze_in_force(session, ctx.calendar())))


@router.put(
    "/freeze",
    response_model=Envelope[FreezeState],
    summary="Freeze every rollout: no wave starts before `until`",
)
def freeze(body: FreezeRequest, session: DbSession, ctx: Rollouts, now: Now) -> dict[str, Any]:
    """Replaces a freeze in force; 400 for an `until` not in the future or a bad reason."""
    reason = body.reason.strip()
    if not reason or not is_one_line(reason):
        raise BadRequest("a freeze needs a reason: one line saying why (--reason)")
    trail.note(detail=f"until {body.until.strip()}: {reason}")
    return ok(_freeze_state(rollouts.freeze(session, ctx, body.until, reason, now)))


@router.delete("/freeze", response_model=Envelope[FreezeState], summary="End the freeze")
def unfreeze(session: DbSession, now: Now) -> dict[str, Any]:
    rollouts.unfreeze(session, now)
    return ok(_freeze_state(None))


@router.put(
    "/bins/{bin_name:path}/rollout/policy",
    response_model=Envelope[PolicySet],
    summary="Set a bin's rollout policy",
)
def set_policy(
    name: BinName, body: PolicyRequest, session: DbSession, pointers: Pointers, now: Now
) -> dict[str, Any]:
    """Used from the bin's next publish; a rollout in progress keeps the policy it started with."""
    arch = _arch(body.arch)
    try:
        policy = make_policy(
            immediate=body.immediate,
            canary=body.canary,
            waves=body.waves,
            bake=body.bakeSeconds,
            max_failures=body.maxFailures,
            canary_label=body.canaryLabel,
            canary_nodes=body.canaryNodes,
            max_offline=body.maxOffline,
            max_refused=body.maxRefused,
            watch=body.watchSeconds,
            window=body.window,
        )
    except PolicyError as exc:
        raise BadRequest(str(exc)) from None
    bin_ = queries.require_bin(session, name)
    rollouts.set_policy(session, pointers, bin_, arch, policy, now)
    return ok(
        {"binName": name, "arch": arch, "policy": policy.to_dict(), "describe": policy.describe()}
    )


@router.post(
    "/bins/{bin_name:path}/rollout/{action}",
    response_model=Envelope[ActionDone],
    summary="Promote, halt, resume, abort or revert a rollout",
)
def act(
    name: BinName,
    action: Action,
    session: DbSession,
    pointers: Pointers,
    ctx: Rollouts,
    now: Now,
    body: ActionRequest | None = None,
) -> dict[str, Any]:
    """409 when no rollout of the bin is in a state the action fits (the message says which).
    revert: every node back to the last completed release at once; `reason` required."""
    arch = _arch(body.arch if body else None)
    if action == "revert":
        reason = (body.reason if body and body.reason else "").strip()
        if not reason or not is_one_line(reason):
            raise BadRequest("a revert needs a reason: one line saying why (--reason)")
        bin_ = queries.require_bin(session, name)
        trail.note(detail=f"reason: {reason}")
        done = rollouts.revert(session, pointers, ctx, bin_, arch, reason, now)
        return ok({"binName": name, "action": action, "done": done})
    bin_ = queries.require_bin(session, name)
    done = rollouts.act(session, pointers, ctx, bin_, arch, action, now)
    return ok({"binName": name, "action": action, "done": done})
