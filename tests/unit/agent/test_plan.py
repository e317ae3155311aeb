"""plan.py: the pure decisions of a tick."""

from __future__ import annotations

import pytest

from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.agent.plan import (
    Action,
    Recovery,
    RecoveryPlan,
    decide,
    processing_time,
    recover,
    rollback_target,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def entry(version: str = A, history: dict[str, str] | None = None, **kw: object) -> ManagedBinary:
    return ManagedBinary("svc", "svc", version=version, history=history or {}, **kw)  # type: ignore[arg-type]


def test_decide() -> None:
    assert decide(entry(A), A) == Action.NOTHING
    assert decide(entry(A), B) == Action.UPGRADE
    assert decide(entry(""), B) == Action.UPGRADE
    assert decide(entry(A, {B: "err"}), B) == Action.SKIP_KNOWN_BAD
    assert decide(entry(A, {B: "ok"}), B) == Action.UPGRADE  # going forward again


@pytest.mark.parametrize(
    ("binary", "file_sha", "expected"),
    [
        (entry(A, {A: "ok"}), A, RecoveryPlan(Recovery.NONE)),
        (entry("", {}), None, RecoveryPlan(Recovery.NONE)),
        # replaced, maybe restarted, never recorded: finish it
        (entry(A, {A: "ok", B: ""}, upgrade_path={B: A}), B, RecoveryPlan(Recovery.FINISH, B, A)),
        # died before the replace
        (entry(A, {A: "ok", B: ""}, upgrade_path={B: A}), A, RecoveryPlan(Recovery.ABANDON, B, A)),
        # first install died before the replace
        (entry("", {B: ""}, upgrade_path={B: ""}), None, RecoveryPlan(Recovery.ABANDON, B, "")),
        # pending and BIN_DIR holds something else entirely
        (entry(A, {B: ""}), C, RecoveryPlan(Recovery.RESTORE, B, A)),
        # someone replaced the binary by hand
        (entry(A, {A: "ok"}), C, RecoveryPlan(Recovery.RESTORE, "", A)),
        (entry(A, {A: "ok"}), None, RecoveryPlan(Recovery.RESTORE, "", A)),
    ],
)
def test_recover(binary: ManagedBinary, file_sha: str | None, expected: RecoveryPlan) -> None:
    assert recover(binary, file_sha) == expected


def test_rollback_target_follows_upgrade_path() -> None:
    assert rollback_target(entry(B, upgrade_path={B: A, C: B})) == A
    assert rollback_target(entry(B, previous_version=C)) == C
    assert rollback_target(entry("")) == ""


def test_processing_time() -> None:
    assert processing_time(1000.9, 990.0) == 10
    assert processing_time(980.0, 990.0) == 0
