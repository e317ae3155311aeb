"""Pure decisions of a tick: what to do with one binary (no I/O, no clock, no env)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client.history import ERR, PENDING


class Action(str, Enum):
    NOTHING = "nothing"
    SKIP_KNOWN_BAD = "skip-known-bad"
    UPGRADE = "upgrade"

    def __str__(self) -> str:  # as StrEnum (Python 3.11), which 3.9 lacks
        return str(self.value)


def decide(entry: ManagedBinary, latest: str) -> Action:
    """What one tick should do for one binary, given the latest published sha256."""
    if latest == entry.version:
        return Action.NOTHING
    if entry.history.get(latest) == ERR:
        return Action.SKIP_KNOWN_BAD
    return Action.UPGRADE


class Recovery(str, Enum):
    NONE = "none"
    FINISH = "finish"  # the new binary is in place: restart, watch, commit or roll back
    ABANDON = "abandon"  # died before the replace: forget the attempt
    RESTORE = "restore"  # BIN_DIR does not hold `version`: put it back
    ADOPT = "adopt"  # BIN_DIR holds the published latest, the manifest an older one: record it

    def __str__(self) -> str:  # as StrEnum (Python 3.11), which 3.9 lacks
        return str(self.value)


@dataclass(frozen=True)
class RecoveryPlan:
    kind: Recovery
    target: str = ""  # the sha the interrupted tick was installing (FINISH/ABANDON)
    previous: str = ""  # the sha to roll back to / restore


def pending_target(entry: ManagedBinary) -> str:
    """The sha an earlier tick started installing and never finished, or ""."""
    pending = [s for s, r in entry.history.items() if r == PENDING and s != entry.version]
    return pending[-1] if pending else ""


def recover(entry: ManagedBinary, file_sha: str | None, latest: str | None = None) -> RecoveryPlan:
    """Crash recovery (docs/agent.md): how to converge after a tick died mid-upgrade.

    When BIN_DIR already holds `latest` (the published sha) and the manifest says an older
    version — an operator saved an old copy of the manifest — the file is adopted as it
    is: restoring the old version and upgrading again would restart the service twice.
    """
    target = pending_target(entry)
    if target:
        previous = entry.upgrade_path.get(target, entry.version)
        if file_sha == target:
            return RecoveryPlan(Recovery.FINISH, target, previous)
        if entry.version and file_sha != entry.version:
            return RecoveryPlan(Recovery.RESTORE, target, entry.version)
        return RecoveryPlan(Recovery.ABANDON, target, entry.version)
    if entry.version and file_sha != entry.version:
        if file_sha is not None and file_sha == latest and entry.history.get(latest) != ERR:
            return RecoveryPlan(Recovery.ADOPT, latest, entry.version)
        return RecoveryPlan(Recovery.RESTORE, "", entry.version)
    return RecoveryPlan(Recovery.NONE)


def rollback_target(entry: ManagedBinary) -> str:
    """The version to go back to from the installed one, following upgradePath."""
    return entry.upgrade_path.get(entry.version, "") or entry.previous_version


def usable_rollback_target(entry: ManagedBinary, withdrawn: Collection[str]) -> str:
    """rollback_target, unless the bin-manager withdrew it or this host marked it bad."""
    target = rollback_target(entry)
    if not target or target in withdrawn or entry.history.get(target) == ERR:
        return ""
    return target


def is_move_back(running: str, withdrawn: Collection[str]) -> bool:
    """True when the release running here was withdrawn (a pin or a revert moved the fleet
    to an earlier release): installing the latest is a move back, not an upgrade, and
    the withdrawn release must never become anyone's rollback target."""
    return bool(running) and running in withdrawn


def processing_time(now: float, lock_created: float) -> int:
    """Whole seconds since the lock was taken, never negative."""
    return max(0, int(now - lock_created))
