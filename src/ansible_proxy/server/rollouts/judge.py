"""Pure: what a wave's counts mean under its policy: halt, wait (and why), or baked.

A wave counts its members apart (counts.py reads them, for the engine and for `rollout
status` alike): `failed` (the release failed on the host), `offline` (not heard for the
silent window: it never polled, or went silent during its bake), `not_installed` (told
the release, heard, no report of it yet), `refused` (the host would not take it: a
signature it does not trust, a release it holds as bad), `host_trouble` (the host could
not try it), `baking` and `healthy`. Each has its own threshold:

  failed        reaching --max-failures halts the rollout and reverts the fleet
  offline       over --max-offline, the wave waits: an offline node is no bad release
  refused       over --max-refused, the wave waits likewise
  not_installed the wave waits for every one (`rollout promote` moves on)
  host_trouble  counted and shown, never waited for (the host retries each tick)

A wave is baked when nothing holds it and at least one member stayed healthy: a wave of
offline or refusing nodes proved nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ansible_proxy.server.rollouts.policy import Count, Policy, failure_limit, wait_limit

Verdict = Literal["halt", "wait", "baked"]


@dataclass(frozen=True)
class Tally:
    """A wave's members by what they count as (skipped members are in `size` only)."""

    size: int
    failed: int = 0
    offline: int = 0
    not_installed: int = 0
    refused: int = 0
    host_trouble: int = 0
    baking: int = 0
    healthy: int = 0


@dataclass(frozen=True)
class Limits:
    """A wave's thresholds: failures that halt it; offline and refusing nodes it may have
    and still be promoted (None: any number)."""

    failures: int
    offline: int | None
    refused: int | None


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    why: str  # a sentence for `rollout status`, the stuck notice and the halt's reason
    over_limit: bool = False  # it waits because offline or refused nodes are over a limit


def limits(policy: Policy, size: int) -> Limits:
    return Limits(
        failures=failure_limit(policy, size),
        offline=wait_limit(policy.max_offline, size),
        refused=wait_limit(policy.max_refused, size),
    )


def judge(policy: Policy, tally: Tally) -> Judgement:
    """Halt, wait or baked, first reason first: failures, then the wait limits, then the
    members still to install or bake, then a wave that proved nothing."""
    limit = limits(policy, tally.size)
    of = f"of {tally.size} nodes"
    if tally.failed >= limit.failures:
        return Judgement(
            "halt", f"{tally.failed} {of} failed (--max-failures {policy.max_failures})"
        )
    over = [
        _over(count, allowed, option, given, what, of)
        for count, allowed, option, given, what in (
            (tally.offline, limit.offline, "--max-offline", policy.max_offline, "offline"),
            (tally.refused, limit.refused, "--max-refused", policy.max_refused, "refusing it"),
        )
        if allowed is not None and count > allowed
    ]
    if over:
        return Judgement("wait", "; ".join(over) + ": the wave waits", over_limit=True)
    if tally.not_installed or tally.baking:
        parts = [f"{tally.not_installed} not installed yet"] if tally.not_installed else []
        parts += [f"{tally.baking} baking"] if tally.baking else []
        return Judgement("wait", f"{', '.join(parts)} ({of})")
    if not tally.healthy:
        return Judgement("wait", f"no node stayed healthy yet ({of}): nothing is proved")
    return Judgement("baked", f"{tally.healthy} {of} stayed healthy")


def _over(count: int, allowed: int, option: str, given: Count | None, what: str, of: str) -> str:
    return f"{count} {of} {what}, over {option} {given} ({allowed})"
