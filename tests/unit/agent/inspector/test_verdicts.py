"""health.py: the inspector's pure decisions (outcomes, flap protection, one step only)."""

from __future__ import annotations

import pytest

from ansible_proxy.agent.inspector.verdicts import (
    Check,
    Health,
    Outcome,
    Remedy,
    combine,
    exit_code,
    judge,
    rolled_back_to,
)
from ansible_proxy.agent.manifest import ManagedBinary

A, B, C = "a" * 64, "b" * 64, "c" * 64
H, U, K = Outcome.HEALTHY, Outcome.UNHEALTHY, Outcome.UNKNOWN


def upgraded(history: dict[str, str] | None = None) -> ManagedBinary:
    """B installed over A by the agent."""
    return ManagedBinary(
        "svc",
        "svc",
        version=B,
        previous_version=A,
        history=history or {A: "ok", B: "ok"},
        upgrade_path={A: "", B: A},
    )


def health(*outcomes: Outcome, fatal: bool = False, supervised: bool = True) -> Health:
    checks = tuple(Check(f"c{i}", o, str(o)) for i, o in enumerate(outcomes))
    return Health(checks, fatal=fatal, supervised=supervised)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [((H, H), H), ((H, K), K), ((K, U), U), ((H, U, K), U), ((), H)],
)
def test_unhealthy_outranks_unknown_outranks_healthy(
    outcomes: tuple[Outcome, ...], expected: Outcome
) -> None:
    assert combine(outcomes) == expected


def test_rollback_only_after_check_failures_consecutive_runs() -> None:
    first = judge(upgraded(), health(U), failures=0, threshold=2)
    assert (first.remedy, first.failures) == (Remedy.WAIT, 1)
    second = judge(upgraded(), health(U), failures=first.failures, threshold=2)
    assert (second.remedy, second.target, second.failures) == (Remedy.ROLL_BACK, A, 2)


def test_healthy_run_resets_the_count_and_unknown_keeps_it() -> None:
    assert judge(upgraded(), health(H), failures=1, threshold=2).failures == 0
    unknown = judge(upgraded(), health(H, K), failures=1, threshold=2)
    assert (unknown.remedy, unknown.failures) == (Remedy.NONE, 1)


def test_unknown_is_never_a_reason_to_roll_back() -> None:
    for failures in range(5):
        assert judge(upgraded(), health(K, K), failures, threshold=1).remedy == Remedy.NONE


def test_fatal_is_conclusive_at_once() -> None:
    verdict = judge(upgraded(), health(U, fatal=True), failures=0, threshold=5)
    assert (verdict.remedy, verdict.target) == (Remedy.ROLL_BACK, A)


def test_never_upgraded_or_not_installed_is_left_alone() -> None:
    first_install = ManagedBinary("svc", "svc", version=A, history={A: "ok"}, upgrade_path={A: ""})
    assert judge(first_install, health(U, fatal=True), 0, 1).remedy == Remedy.NO_PATH
    nothing = ManagedBinary("svc", "svc")
    assert judge(nothing, health(U, fatal=True), 0, 1).remedy == Remedy.NOT_INSTALLED


def test_one_step_only_after_a_rollback() -> None:
    # C was bad and rolled back to B: B failing too is left for a person.
    after = ManagedBinary(
        "svc",
        "svc",
        version=B,
        previous_version=A,
        history={A: "ok", B: "ok", C: "err"},
        upgrade_path={A: "", B: A, C: B},
    )
    assert rolled_back_to(after) == C
    assert judge(after, health(U, fatal=True), 3, 1).remedy == Remedy.ALREADY_ROLLED_BACK
    assert rolled_back_to(upgraded()) == ""


def test_known_bad_target_and_unsupervised_service_are_not_touched() -> None:
    bad_target = upgraded({A: "err", B: "ok"})
    assert judge(bad_target, health(U), 1, 1).remedy == Remedy.TARGET_BAD
    verdict = judge(upgraded(), health(U, supervised=False), 1, 1)
    assert verdict.remedy == Remedy.NOT_SUPERVISED


@pytest.mark.parametrize(
    ("outcomes", "rolled_back", "code"),
    [((H, H), False, 0), ((H, K), False, 3), ((K, U), False, 1), ((H,), True, 1), ((), False, 0)],
)
def test_exit_codes(outcomes: tuple[Outcome, ...], rolled_back: bool, code: int) -> None:
    assert exit_code(outcomes, rolled_back) == code


def test_reasons_name_every_check_that_is_not_healthy() -> None:
    h = Health((Check("port", U, "8080 refuses"), Check("alerts", K, "down"), Check("p", H, "")))
    assert h.reasons() == "port: 8080 refuses; alerts: down"
