"""The answers of the staged-rollout routes (api/rollouts.py) as pydantic models: `rollout
status` is rollouts/status.py's dict, these name its keys in the same order (as
api/answers.py does for the other admin routes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ansible_proxy.protocol import Answer


class ImmediatePolicy(Answer):
    """Every node is told the new release at once."""

    immediate: Literal[True]
    describe: str = Field(description="in `rollout set`'s words")


class StagedPolicy(Answer):
    """A canary, then waves, each baked before the next."""

    immediate: Literal[False]
    describe: str = Field(description="in `rollout set`'s words")
    canary: str = Field(description="N nodes or P% of the fleet")
    waves: str = Field(description="P%,P%,… of the fleet")
    bakeSeconds: int
    maxFailures: str = Field(description="N or P% of a wave")
    canaryLabel: str | None = Field(description="k=v or reported:k=v")
    canaryNodes: str | None = Field(description="a,b: node names")
    maxOffline: str | None = Field(description="N or P% of a wave offline; more: it waits")
    maxRefused: str | None = Field(description="N or P% of a wave refusing; more: it waits")
    watchSeconds: int = Field(description="after the last wave, still judged this long (0: not)")
    windows: str | None = Field(description="when its waves may start; null: any time")


Policy = ImmediatePolicy | StagedPolicy


class WaveNode(Answer):
    name: str
    state: str = Field(description="waiting, upgrading, baking, healthy, failed, offline, …")
    reason: str | None
    bakeRemaining: int | None = Field(description="seconds, while baking")
    lastSeen: str | None


class Tally(Answer):
    """A started wave's members by what they count as (rollouts/judge.py), as the server
    judges the wave: each count apart, with its own threshold."""

    failed: int = Field(description="the release failed on them (--max-failures)")
    offline: int = Field(description="not heard: never polled, or silent (--max-offline)")
    notInstalled: int = Field(description="told the release, no report of it yet")
    refused: int = Field(description="the host refused it: signature, known bad (--max-refused)")
    hostTrouble: int = Field(description="the host could not try it; never waited for")
    baking: int
    healthy: int


class Wave(Answer):
    index: int
    name: str
    nodes: list[WaveNode] = Field(description="the first 200 by name")
    size: int
    failures: int
    counts: dict[str, int] = Field(description="how many nodes are in each state")
    failureLimit: int | None = Field(description="how many failures halt it; null: empty")
    state: str = Field(description="done, active, halted, waiting, …")
    bakeRemaining: int | None
    tally: Tally | None = Field(description="null for a wave not started")
    offlineLimit: int | None = Field(description="offline nodes it may have; null: any")
    refusedLimit: int | None = Field(description="refusing nodes it may have; null: any")
    waitingFor: str | None = Field(description="why the current wave is not promoted yet")


class NamedReason(Answer):
    name: str
    reason: str


class WaitingNode(Answer):
    name: str
    doing: str


class Stuck(Answer):
    """A wave that waited past BIN_MANAGER_ROLLOUT_STUCK_SECONDS (rollouts/stuck.py)."""

    since: str
    waitingOn: list[WaitingNode]
    count: int
    text: str
    notifiedAt: str | None = Field(description="when rollout-stuck went out")


class ToldBack(Answer):
    name: str
    release: str


class StrandedNode(Answer):
    name: str
    told: str
    reason: str | None


class Revert(Answer):
    """A reverted rollout still answering: who is told what, who has not moved, the way out."""

    toldBack: list[ToldBack]
    stranded: list[StrandedNode]
    strandedCount: int
    wayOut: str


class Watch(Answer):
    """A rollout past its last wave, still judged (`--watch`, rollouts/watch.py)."""

    seconds: int = Field(description="how long it is watched")
    remaining: int = Field(description="seconds left, on the heard clock")
    text: str


class RolloutView(Answer):
    """One rollout of a release, wave by wave."""

    id: int
    arch: str
    state: str = Field(description="rolling, halted, watching, completed or superseded")
    halted: bool
    reverted: bool
    release: str
    previous: str
    policy: Policy
    wave: int = Field(description="the newest started wave (0: the canary)")
    waveCount: int
    reason: str | None
    startedAt: str
    waveStartedAt: str
    updatedAt: str
    waves: list[Wave]
    paused: bool
    leftOut: list[NamedReason] = Field(description="nodes left out at the start: the first")
    leftOutCount: int
    stuck: Stuck | None
    revert: Revert | None
    watch: Watch | None = Field(description="while watching after every wave")
    held: str | None = Field(
        description="why its next wave may not start now: the freeze, or a closed window"
    )


class FreezeShown(Answer):
    """The fleet-wide freeze (`bin-manager freeze`): no wave starts before `until`."""

    until: str
    reason: str


class FreezeState(Answer):
    """GET, PUT and DELETE /admin/freeze."""

    frozen: bool
    until: str | None
    reason: str | None


class BinRollouts(Answer):
    """`rollout status`: a bin's policies and its newest rollout per arch."""

    binName: str
    paused: bool
    policies: dict[str, Policy] = Field(description="the bin's own, by arch (* for every arch)")
    defaultPolicy: Policy
    rollouts: list[RolloutView]
    state: str = Field(description="halted, rolling, watching, completed, superseded or none")
    freeze: FreezeShown | None = Field(description="the fleet-wide freeze in force")


class PlannedWave(Answer):
    index: int
    name: str
    size: int
    nodes: list[str] = Field(description="in the rollout order; the first 200")
    earliestSeconds: int = Field(description="after the publish, at the earliest")


class ArchPlan(Answer):
    """What a publish for one arch would start now (rollouts/planning.py)."""

    arch: str
    policy: Policy
    policySource: str = Field(description="bin, bin/arch or default")
    waves: list[PlannedWave]
    completesAfterSeconds: int | None = Field(description="at the earliest, watch included")
    leftOut: list[NamedReason]
    leftOutCount: int
    note: str | None = Field(description="why a publish would tell every node at once")
    freeze: FreezeShown | None = Field(description="the fleet-wide freeze in force")


class RolloutPlan(Answer):
    """`rollout plan`: the waves a publish would start, per arch, before anything is published."""

    binName: str
    plans: list[ArchPlan]


class PolicySet(Answer):
    binName: str
    arch: str | None
    policy: Policy
    describe: str


class ActionDone(Answer):
    binName: str
    action: str
    done: list[str] = Field(description="one line per rollout changed")
