"""The rollout policy: options checked with one clear message, waves stable and whole."""

from __future__ import annotations

import hashlib

import pytest

from ansible_proxy.server.rollouts.policy import (
    IMMEDIATE,
    Count,
    Policy,
    PolicyError,
    failure_limit,
    make_policy,
    node_order,
    parse_policy_text,
    plan_waves,
    policy_from_json,
    policy_to_json,
)

NODES: dict[str, dict[str, str]] = {f"host-{n:03d}": {} for n in range(20)}
KEY = b"0" * 64  # the server's secret (server/db/secrets.py)


def staged(**options: str | int) -> Policy:
    values: dict[str, str | int] = {
        "canary": "1",
        "waves": "25%,100%",
        "bake": 60,
        "max_failures": "1",
    }
    values.update(options)
    return make_policy(**values)  # type: ignore[arg-type]


def test_counts_and_percentages() -> None:
    assert Count(3, False).of(100) == 3
    assert Count(10, True).of(25) == 3  # rounds up
    assert Count(1, True).of(5) == 1  # never below one node


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"canary": "0"}, "--canary '0': must be at least 1"),
        ({"canary": "150%"}, "must be 1-100 %"),
        ({"canary": "x"}, "--canary 'x': expected a number of nodes or a percentage"),
        ({"waves": "50%,25%"}, "larger than the one before"),
        ({"waves": "3"}, "each wave is a share"),
        ({"bake": "-1"}, "--bake '-1': seconds"),
        ({"max_failures": "0%"}, "must be 1-100 %"),
        ({"canary_label": "tier"}, "--canary-label: label 'tier' has no '='"),
        ({"canary_label": "a=1,b=2"}, "exactly one k=v"),
        ({"canary_label": "reported:"}, "exactly one k=v"),
        ({"canary_label": "other:tier=a"}, "invalid label other:tier=a"),
        ({"canary_nodes": "web-01,web 02"}, "--canary-nodes: 'web 02' is not a node name"),
        ({"canary_nodes": "web-01,web-01"}, "--canary-nodes: a node is named twice"),
        ({"canary_nodes": ",".join(f"n{i}" for i in range(51))}, "at most 50 nodes"),
    ],
)
def test_bad_options_are_named(options: dict[str, str], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        staged(**options)
    assert message in str(caught.value)


def test_missing_options_and_immediate() -> None:
    with pytest.raises(PolicyError, match="missing --bake, --max-failures"):
        make_policy(canary="1", waves="100%")
    with pytest.raises(PolicyError, match="--immediate takes no other option"):
        make_policy(immediate=True, canary="1")
    with pytest.raises(PolicyError, match=r"no other option \(got --canary-nodes\)"):
        make_policy(immediate=True, canary_nodes="web-01")
    assert make_policy(immediate=True) == IMMEDIATE


def test_waves_end_at_the_whole_fleet() -> None:
    policy = make_policy(canary="1", waves="10%,50%", bake=5, max_failures="2")
    assert policy.waves == (10, 50, 100)


def test_the_setting_text_and_the_recorded_json_round_trip() -> None:
    text = "--canary 5% --waves 25%,100% --bake 300 --max-failures 10% --canary-label tier=canary"
    policy = parse_policy_text(text)
    assert policy.describe() == text
    assert policy_from_json(policy_to_json(policy)) == policy
    both = f"{text[: -len('tier=canary')]}reported:tier=canary --canary-nodes web-01,web-02"
    policy = parse_policy_text(both)
    assert policy.canary_label == ("reported:tier", "canary")
    assert policy.canary_nodes == ("web-01", "web-02")
    assert policy.describe() == both
    assert policy_from_json(policy_to_json(policy)) == policy
    assert parse_policy_text("--immediate") == IMMEDIATE
    with pytest.raises(PolicyError, match="expected --immediate or"):
        parse_policy_text("--canary")


def test_order_is_stable_per_bin_and_keyed_by_the_servers_secret() -> None:
    names = list(NODES)
    assert node_order("web", names, KEY) == node_order("web", list(reversed(names)), KEY)
    assert node_order("web", names, KEY) != node_order("db", names, KEY)
    assert node_order("web", names, KEY) != node_order("web", names, b"1" * 64)
    # Not the order anyone can compute without the key (issue 25.4: sha256(bin\0name)).
    public = sorted(names, key=lambda n: hashlib.sha256(f"web\0{n}".encode()).digest())
    assert node_order("web", names, KEY) != public


def test_waves_cover_every_node_once_canary_first() -> None:
    policy = staged(canary="2", waves="25%,50%,100%")
    waves = plan_waves("web", NODES, policy, KEY)
    assert [len(wave) for wave in waves] == [2, 3, 5, 10]  # 25 % of 20 = 5 nodes in all
    assert sorted(name for wave in waves for name in wave) == sorted(NODES)
    assert waves[0] == node_order("web", list(NODES), KEY)[:2]


def test_a_label_chooses_the_canary_and_none_falls_back_to_the_canary_count() -> None:
    nodes = dict(NODES)
    nodes["host-017"] = {"tier": "canary"}
    nodes["host-004"] = {"reported:tier": "canary"}  # its own NODE_LABELS
    waves = plan_waves("web", nodes, staged(canary_label="tier=canary"), KEY)
    assert waves[0] == ["host-017"]
    assert "host-017" not in {name for wave in waves[1:] for name in wave}
    reported = plan_waves("web", nodes, staged(canary_label="reported:tier=canary"), KEY)
    assert reported[0] == ["host-004"]
    fallback = plan_waves("web", NODES, staged(canary_label="tier=canary"), KEY)
    assert fallback[0] == node_order("web", list(NODES), KEY)[:1]


def test_named_canaries_are_the_members_named() -> None:
    nodes = dict(NODES)
    nodes["host-003"] = {"tier": "canary"}
    waves = plan_waves("web", nodes, staged(canary_nodes="host-009,host-001,gone"), KEY)
    assert sorted(waves[0]) == ["host-001", "host-009"]  # "gone" is no member: left out
    both = staged(canary_nodes="host-009", canary_label="tier=canary")
    assert sorted(plan_waves("web", nodes, both, KEY)[0]) == ["host-003", "host-009"]
    nobody = plan_waves("web", NODES, staged(canary="3", canary_nodes="gone"), KEY)
    assert nobody[0] == node_order("web", list(NODES), KEY)[:3]  # as --canary 3 alone


def test_small_fleets_have_no_empty_wave() -> None:
    assert plan_waves("web", {"only": {}}, staged(), KEY) == [["only"]]
    assert plan_waves("web", {}, staged(), KEY) == []


def test_failure_limit_per_wave() -> None:
    assert failure_limit(staged(max_failures="10%"), 50) == 5
    assert failure_limit(staged(max_failures="10%"), 3) == 1
    assert failure_limit(staged(max_failures="2"), 50) == 2
