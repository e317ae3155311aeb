"""A wave's counts against its policy (rollouts/judge.py): failures halt, offline and
refusing nodes over their limits make it wait, nothing is proved by a wave of no healthy
node; each count with its own threshold."""

from __future__ import annotations

import pytest

from ansible_proxy.server.rollouts.judge import Tally, judge, limits
from ansible_proxy.server.rollouts.policy import (
    PolicyError,
    make_policy,
    parse_policy_text,
    policy_from_json,
    policy_to_json,
)


def policy(**options: str):  # type: ignore[no-untyped-def]
    values = {"canary": "1", "waves": "100%", "bake": 60, "max_failures": "1"}
    return make_policy(**{**values, **options})  # type: ignore[arg-type]


def test_failures_halt_before_anything_else() -> None:
    tally = Tally(size=10, failed=1, offline=9)
    judged = judge(policy(max_offline="0"), tally)
    assert (judged.verdict, judged.why) == ("halt", "1 of 10 nodes failed (--max-failures 1)")
    assert judge(policy(max_failures="20%"), Tally(size=10, failed=1, healthy=9)).verdict == (
        "baked"
    )


def test_offline_nodes_over_the_limit_make_the_wave_wait_never_halt() -> None:
    strict = policy(max_offline="10%")  # of 10 nodes: 1 may be offline
    assert limits(strict, 10).offline == 1
    assert judge(strict, Tally(size=10, offline=1, healthy=9)).verdict == "baked"
    judged = judge(strict, Tally(size=10, offline=2, healthy=8))
    assert judged.verdict == "wait"
    assert judged.over_limit
    assert judged.why == "2 of 10 nodes offline, over --max-offline 10% (1): the wave waits"


def test_without_a_limit_offline_nodes_never_hold_a_wave_but_one_must_be_healthy() -> None:
    assert limits(policy(), 10).offline is None
    assert judge(policy(), Tally(size=10, offline=9, healthy=1)).verdict == "baked"
    judged = judge(policy(), Tally(size=3, offline=2, refused=1))
    assert (judged.verdict, judged.over_limit) == ("wait", False)
    assert judged.why == "no node stayed healthy yet (of 3 nodes): nothing is proved"


def test_zero_means_none_at_all_and_refusals_have_their_own_limit() -> None:
    none_offline = policy(max_offline="0", max_refused="2")
    assert judge(none_offline, Tally(size=5, offline=1, healthy=4)).verdict == "wait"
    assert judge(none_offline, Tally(size=5, refused=2, healthy=3)).verdict == "baked"
    judged = judge(none_offline, Tally(size=5, refused=3, offline=1, healthy=1))
    assert judged.why == (
        "1 of 5 nodes offline, over --max-offline 0 (0); "
        "3 of 5 nodes refusing it, over --max-refused 2 (2): the wave waits"
    )


def test_members_not_installed_or_baking_are_waited_for_host_trouble_is_not() -> None:
    judged = judge(policy(), Tally(size=6, not_installed=2, baking=1, healthy=3))
    assert (judged.verdict, judged.why) == ("wait", "2 not installed yet, 1 baking (of 6 nodes)")
    assert judge(policy(), Tally(size=4, host_trouble=3, healthy=1)).verdict == "baked"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_offline": "-1"}, "--max-offline '-1': expected a number of nodes or a percentage"),
        ({"max_offline": "0%"}, "--max-offline '0%': must be 1-100 %"),
        ({"max_refused": "many"}, "--max-refused 'many': expected a number"),
    ],
)
def test_bad_limits_are_named(options: dict[str, str], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy(**options)
    assert message in str(caught.value)


def test_the_limits_are_in_the_policy_s_words_and_survive_its_json() -> None:
    given = policy(max_offline="10%", max_refused="0")
    assert given.describe().endswith("--max-offline 10% --max-refused 0")
    assert policy_from_json(policy_to_json(given)) == given
    assert parse_policy_text(given.describe()) == given
    assert policy_from_json(policy_to_json(policy())).max_offline is None
    with pytest.raises(PolicyError, match=r"no other option \(got --max-offline\)"):
        make_policy(immediate=True, max_offline="1")
