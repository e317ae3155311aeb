"""Pure decisions of the inspector (docs/inspector.md): outcomes, verdicts, exit code.

No I/O, no clock: `probes.py` measures, `check.py` acts on what is judged here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from ansible_proxy.agent import plan
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client import history
from ansible_proxy.errors import EXIT_DEPLOY, EXIT_OK, EXIT_UNKNOWN

if TYPE_CHECKING:
    from ansible_proxy.agent.adapters.engine import RunningImage


class Outcome(str, Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"
    STOPPED = "stopped"  # supervisor's STOPPED: an operator stopped it; not a failure

    def __str__(self) -> str:  # as StrEnum (Python 3.11), which 3.9 lacks
        return str(self.value)


@dataclass(frozen=True)
class Check:
    """One check of one service, named by its kind (kinds.KINDS: process, port, http…)."""

    name: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class Health:
    """Every check of one service; `fatal` = supervisor says FATAL (conclusive at once)."""

    checks: tuple[Check, ...]
    fatal: bool = False
    supervised: bool = True  # a supervisor program (so it can be restarted)
    running: RunningImage | None = None  # an image entry's container, when measured

    @property
    def outcome(self) -> Outcome:
        return combine(c.outcome for c in self.checks)

    def reasons(self) -> str:
        bad = [f"{c.name}: {c.detail}" for c in self.checks if c.outcome != Outcome.HEALTHY]
        return "; ".join(bad)


def combine(outcomes: Iterable[Outcome]) -> Outcome:
    """Unhealthy if any check is; else unknown if any is; else healthy."""
    seen = set(outcomes)
    if Outcome.UNHEALTHY in seen:
        return Outcome.UNHEALTHY
    if Outcome.UNKNOWN in seen:
        return Outcome.UNKNOWN
    if Outcome.STOPPED in seen:
        return Outcome.STOPPED
    return Outcome.HEALTHY


class Remedy(str, Enum):
    NONE = "none"
    WAIT = "wait"  # unhealthy, fewer than CHECK_FAILURES runs in a row
    ROLL_BACK = "roll-back"
    NOT_INSTALLED = "not-installed"  # the agent has installed nothing yet
    NO_PATH = "no-rollback-path"  # never upgraded by the agent: reported, untouched
    ALREADY_ROLLED_BACK = "left-for-a-person"  # this version is itself a rollback target
    TARGET_BAD = "target-known-bad"
    NOT_SUPERVISED = "not-supervised"  # no supervisor program to restart
    PINNED = "pinned"  # the bin-manager pinned this release fleet-wide: a person decides
    TARGET_WITHDRAWN = "target-withdrawn"  # the previous release was pinned away from

    def __str__(self) -> str:  # as StrEnum (Python 3.11), which 3.9 lacks
        return str(self.value)


@dataclass(frozen=True)
class Verdict:
    remedy: Remedy
    target: str = ""
    failures: int = 0  # consecutive unhealthy runs, this one included


def rolled_back_to(entry: ManagedBinary) -> str:
    """The bad version whose rollback put the installed one in place, or ""."""
    for sha, result in entry.history.items():
        if (
            result == history.ERR
            and sha != entry.version
            and entry.upgrade_path.get(sha) == entry.version
        ):
            return sha
    return ""


def judge(
    entry: ManagedBinary,
    health: Health,
    failures: int,
    threshold: int,
    withdrawn: Collection[str] = (),
    pinned: bool = False,
) -> Verdict:
    """What to do about one service, given this run's health and earlier failures.

    `withdrawn`: the releases of this bin the bin-manager pinned away from (never a
    rollback target); `pinned`: the installed version is a release the bin-manager pinned.
    A pinned release that fails is left for a person: going anywhere else would undo the
    operator's fleet-wide decision on this one host.
    """
    outcome = health.outcome
    if outcome in (Outcome.HEALTHY, Outcome.STOPPED):  # a maintenance stop ends a streak
        return Verdict(Remedy.NONE, failures=0)
    if outcome == Outcome.UNKNOWN:
        return Verdict(Remedy.NONE, failures=failures)  # neither breaks nor extends a streak
    count = failures + 1
    if not entry.version:
        return Verdict(Remedy.NOT_INSTALLED, failures=count)
    if pinned:
        return Verdict(Remedy.PINNED, failures=count)
    target = plan.rollback_target(entry)
    if not target:
        return Verdict(Remedy.NO_PATH, failures=count)
    if target in withdrawn:
        return Verdict(Remedy.TARGET_WITHDRAWN, target, count)
    if rolled_back_to(entry):
        return Verdict(Remedy.ALREADY_ROLLED_BACK, target, count)
    if entry.history.get(target) == history.ERR:
        return Verdict(Remedy.TARGET_BAD, target, count)
    if count < threshold and not health.fatal:
        return Verdict(Remedy.WAIT, target, count)
    if not health.supervised:
        return Verdict(Remedy.NOT_SUPERVISED, target, count)
    return Verdict(Remedy.ROLL_BACK, target, count)


def exit_code(outcomes: Iterable[Outcome], rolled_back: bool) -> int:
    """0 all healthy, 1 something unhealthy or rolled back, 3 only unknowns."""
    overall = combine(outcomes)
    if rolled_back or overall == Outcome.UNHEALTHY:
        return EXIT_DEPLOY
    return EXIT_UNKNOWN if overall == Outcome.UNKNOWN else EXIT_OK
