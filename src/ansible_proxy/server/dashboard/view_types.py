"""What the dashboard's views hand to the templates, as TypedDicts: one per row or section
a template reads, with the names it uses (`node.ago`, `wave.failTone`).

TypedDicts rather than dataclasses: Jinja reads both alike, and the views' callers (and
their tests) index them as the dicts they were. A template reading a key that is not here
is an error in tests/unit/server/dashboard/test_view_types.py (StrictUndefined).
Times: `at`, `lastSeen`, `publishedAt`, `reportedAt` are ISO 8601 UTC with a Z; `ago` and
friends are their wording ("5 min ago").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from ansible_proxy.server.db.signatures import Signed


class Pager(TypedDict):
    """The count and the first/previous/next links (relative "?…" URLs) of a node listing."""

    total: int
    prefix: str
    first_name: str | None
    last_name: str | None
    first: str
    previous: str | None
    next: str | None


class NodeRow(TypedDict):
    name: str
    arch: str
    os: str
    agent: str
    labels: str
    lastSeen: str | None
    ago: str
    stale: bool
    # The fleet page's: the node runs another agent than the latest published for its arch.
    agentBehind: NotRequired[bool]


class ReleaseNodeRow(NodeRow):
    reportedAt: str  # when it reported running the release, worded ("3 min ago")


class BinRow(TypedDict):
    """A bin on the fleet page: its latest per arch and how many nodes run it."""

    name: str
    paused: bool
    latest: dict[str, str]
    pinned: set[str]
    nodes: int
    current: int
    percent: int


class AgentsBehind(TypedDict):
    behind: int
    nodes: int


class FleetPage(TypedDict):
    nodes: list[NodeRow]
    pager: Pager
    total: int
    bins: list[BinRow]
    stale: int
    agents: AgentsBehind | None  # None: no agent (ansible-proxy) release published


class ReleaseRow(TypedDict):
    """A release on its bin's page (db/listings.releases and what the page adds)."""

    binName: str
    arch: str
    sha256: str
    size: int
    publishedAt: str
    latest: bool
    running: int
    signed: Signed | None
    failures: int


class ArchRow(TypedDict):
    arch: str
    latest: str | None
    nodes: int
    current: int
    percent: int
    releases: list[ReleaseRow]


class FailureRow(TypedDict):
    """A failed report on a bin's page, as views.explain words it."""

    nodeName: str
    targetHash: str
    processingTime: int
    reportedAt: str
    event: str  # failed, rollback, host-trouble or refused
    because: str | None
    ago: str


class RunningRow(TypedDict):
    node: str
    arch: str
    sha256: str


class BinPage(TypedDict):
    name: str
    paused: bool
    pinned: set[str]
    arches: list[ArchRow]
    failures: list[FailureRow]
    running: list[RunningRow]
    pager: Pager


class NodeShown(NodeRow):
    adminLabels: str


class NodeBinRow(TypedDict):
    """What a node runs of one bin, and whether that is the latest for its arch."""

    binName: str
    sha256: str
    version: str
    reportedAt: str
    latest: bool


class TimelineItem(TypedDict):
    at: str | None
    kind: str  # an explained progress event, or "reported"
    bin: str
    sha256: str
    seconds: int | None
    because: str | None
    ago: str


class NodePage(TypedDict):
    node: NodeShown
    bins: list[NodeBinRow]
    timeline: list[TimelineItem]


class ReleasePage(TypedDict):
    bin: str
    paused: bool
    arch: str
    sha256: str
    size: int
    published: str | None
    publishedAgo: str
    latest: bool
    nodes: list[ReleaseNodeRow]
    pager: Pager
    failures: int


class ActivityItem(TypedDict):
    at: str | None
    kind: str
    bin: str | None
    arch: str | None
    sha256: str | None
    node: str | None
    because: str | None
    tone: str  # ok, info, warn or bad (views.TONES)
    ago: str
    who: str  # a person, "token NAME (fingerprint)", "admin-token", "bin-manager", "agent"


class NodeCredential(TypedDict):
    """The node page's credential (db/credentials.describe) and the message of a revoke."""

    credential: dict[str, Any]
    message: str | None


# The bin page's Rollout section (dashboard/rollouts.py), from rollouts/status.py's answer.


class ShownNode(TypedDict):
    name: str
    state: str
    reason: str | None
    bakeRemaining: int | None
    lastSeen: str | None
    bake: str  # bakeRemaining worded


class ShownWave(TypedDict):
    name: str
    state: str
    label: str
    tone: str
    size: int
    counts: str
    failures: int
    failureLimit: int | None
    failTone: str
    bake: str
    nodes: list[ShownNode]
    more: int  # nodes not listed
    # A started wave's counts (rollouts/judge.py), "" before it starts; limits "any" if none.
    offline: str
    notInstalled: str
    refused: str
    waitingFor: str | None  # why the current wave is not promoted yet


class ShownRollout(TypedDict):
    arch: str
    state: str
    tone: str
    label: str
    halted: bool
    reverted: bool
    release: str
    previous: str
    reason: str | None
    startedAt: str
    startedAgo: str
    policyCli: str
    actions: list[str]
    promotes: str | None  # the wave Promote starts; None: Promote completes it
    waves: list[ShownWave]
    paused: bool
    stuck: Mapping[str, Any] | None  # as rollouts/ways_out.stuck_view gives it
    leftOut: list[Mapping[str, Any]]
    leftOutMore: int
    revert: Mapping[str, Any] | None  # as rollouts/ways_out.reverted_view gives it
    watch: Mapping[str, Any] | None  # as rollouts/watch.watch_view gives it
    held: str | None  # why its next wave may not start now (a freeze, a closed window)


class PolicyWords(TypedDict):
    text: str
    cli: str


class ScopedPolicy(PolicyWords):
    scope: str


class PolicyFormValues(TypedDict):
    """The policy form's first values."""

    arches: tuple[str, ...]
    arch: str
    immediate: bool
    canary: str
    waves: str
    bake: str
    maxFailures: str
    canaryLabel: str
    canaryNodes: str
    maxOffline: str
    maxRefused: str
    watch: str  # a duration in rollout set's words (1h30m), "" for none
    window: str  # rollout set's --window, "" for any time


class RolloutSection(TypedDict):
    policies: list[ScopedPolicy]
    default: PolicyWords
    form: PolicyFormValues
    rollouts: list[ShownRollout]
    freeze: Mapping[str, str] | None  # the fleet-wide freeze in force: {until, reason}


class Badge(TypedDict):
    """A rollout badge on the fleet page: one arch's rolling or halted rollout."""

    arch: str
    text: str
    tone: str
