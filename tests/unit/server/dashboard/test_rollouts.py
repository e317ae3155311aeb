"""How the dashboard words and draws a staged rollout (dashboard/rollouts.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ansible_proxy.server.dashboard import rollouts
from ansible_proxy.server.rollouts.policy import PolicyError, make_policy

NOW = datetime(2026, 12, 4, 12, 0, 0)
STAGED = make_policy(canary="1", waves="50%,100%", bake=3600, max_failures="1").to_dict()


def _node(name: str, state: str, reason: str | None = None) -> dict[str, Any]:
    remaining = 600 if state == "baking" else None
    return {"name": name, "state": state, "reason": reason, "bakeRemaining": remaining}


def _status(state: str, reverted: bool, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """One rollout as rollouts/status.rollout_view gives it: one wave of `nodes`, one more."""
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["state"]] = counts.get(node["state"], 0) + 1
    failed = counts.get("failed", 0)
    wave_state = {"rolling": "active", "halted": "halted"}.get(state, "done")
    return {
        "arch": "x86_64",
        "state": state,
        "halted": state == "halted",
        "reverted": reverted,
        "release": "b" * 64,
        "previous": "a" * 64,
        "policy": STAGED,
        "wave": 0,
        "waveCount": 2,
        "reason": "1 of 30 nodes of the canary failed" if state == "halted" else None,
        "startedAt": "2026-12-04T11:58:00Z",
        "waves": [
            {
                "name": "the canary",
                "state": wave_state,
                "nodes": nodes,
                "size": len(nodes),
                "failures": failed,
                "failureLimit": 1,
                "counts": counts,
                "bakeRemaining": 600 if "baking" in counts else None,
            },
            {
                "name": "wave 1",
                "state": "waiting",
                "nodes": [],
                "size": 0,
                "failures": 0,
                "failureLimit": None,
                "counts": {},
                "bakeRemaining": None,
            },
        ],
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0, "0 s"), (7, "7 s"), (250, "4 min 10 s"), (3600, "1 h"), (3905, "1 h 5 min")],
)
def test_durations_read_in_two_units_at_most(seconds: int | None, text: str) -> None:
    assert rollouts.duration(seconds) == text


def test_a_rollouts_progress_counts_the_waves_after_the_canary() -> None:
    assert rollouts.progress_text("rolling", 0, 3, False) == "rolling: the canary"
    assert rollouts.progress_text("rolling", 1, 3, False) == "rolling: wave 1 of 2"
    assert rollouts.progress_text("halted", 1, 3, False) == "halted"
    assert rollouts.progress_text("halted", 1, 3, True) == "halted and reverted"
    assert rollouts.progress_text("completed", 2, 3, False) == "completed"


def test_a_policy_in_words_and_in_rollout_sets_options() -> None:
    assert rollouts.policy_cli(STAGED) == "--canary 1 --waves 50%,100% --bake 3600 --max-failures 1"
    assert rollouts.policy_text(STAGED) == (
        "canary 1 node(s), then 50%, 100% of the fleet; each wave bakes 1 h; "
        "a wave halts the rollout (and reverts it) when 1 node(s) fail"
    )
    labelled = make_policy(
        canary="5%", waves="100%", bake=300, max_failures="10%", canary_label="ring=0"
    ).to_dict()
    assert rollouts.policy_cli(labelled).endswith("--canary-label ring=0")
    assert "canary the nodes labelled ring=0" in rollouts.policy_text(labelled)
    assert "when 10% of a wave's nodes fail" in rollouts.policy_text(labelled)
    assert rollouts.policy_cli(make_policy(immediate=True).to_dict()) == "--immediate"


def test_a_long_wave_is_capped_with_its_failed_nodes_first() -> None:
    nodes = [_node(f"web-{i:02d}", "upgrading") for i in range(28)]
    nodes += [_node("web-98", "failed", "watch: exited"), _node("web-99", "baking")]
    shown = rollouts.shape_rollout(_status("rolling", False, nodes), NOW)
    wave = shown["waves"][0]
    assert len(wave["nodes"]) == rollouts.NODES_SHOWN
    assert wave["more"] == 30 - rollouts.NODES_SHOWN
    assert wave["nodes"][0]["name"] == "web-98"  # a halt's reasons are never cut off
    assert wave["counts"] == "1 failed, 28 upgrading, 1 baking"
    assert (wave["failures"], wave["failureLimit"], wave["failTone"]) == (1, 1, "bad")
    assert wave["bake"] == "10 min"
    assert shown["startedAgo"] == "2 min ago"
    assert shown["promotes"] == "wave 1"


@pytest.mark.parametrize(
    ("state", "reverted", "actions"),
    [
        ("rolling", False, ["promote", "halt", "abort"]),
        ("halted", False, ["resume", "abort"]),
        ("halted", True, ["resume"]),
        ("watching", False, ["promote", "abort"]),
        ("completed", False, []),
        ("superseded", False, []),
    ],
)
def test_only_the_buttons_that_apply_are_offered(
    state: str, reverted: bool, actions: list[str]
) -> None:
    shown = rollouts.shape_rollout(_status(state, reverted, [_node("web-01", "healthy")]), NOW)
    assert shown["actions"] == actions


def test_a_wave_promoted_before_it_baked_is_not_called_done() -> None:
    status = _status("completed", False, [_node("web-01", "healthy")])
    assert rollouts.shape_rollout(status, NOW)["waves"][0]["label"] == "done"
    status = _status("completed", False, [_node("web-01", "upgrading")])
    assert rollouts.shape_rollout(status, NOW)["waves"][0]["label"] == "promoted"


def test_the_policy_form_parses_its_fields_as_make_policy_does() -> None:
    staged = rollouts.form_policy("staged", "1", " 50%,100% ", "30", "1", "")
    assert staged == make_policy(canary="1", waves="50%,100%", bake=30, max_failures="1")
    labelled = rollouts.form_policy("staged", "10%", "25%", "0", "5%", "role=web")
    assert labelled.canary_label == ("role", "web")
    named = rollouts.form_policy("staged", "1", "100%", "0", "1", "", " web-01, web-02 ")
    assert named.canary_nodes == ("web-01", "web-02")
    # Immediate ignores the staged fields the form still holds.
    assert rollouts.form_policy("immediate", "1", "abc", "x", "1", "k=v").immediate


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("staged", "1", "abc", "30", "1", ""), "--waves 'abc': expected a number of nodes"),
        (("staged", "1", "", "30", "", ""), "missing --waves, --max-failures (or say --imm"),
        (("staged", "1", "100%", "soon", "1", ""), "--bake 'soon': seconds from 0 to"),
        (("staged", "1", "100%", "0", "1", "role"), "--canary-label: label 'role' has no '='"),
        (("", "1", "100%", "0", "1", ""), "mode '': choose immediate or staged"),
    ],
)
def test_a_bad_policy_form_names_the_field(fields: tuple[str, ...], message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        rollouts.form_policy(*fields)
    assert str(refused.value).startswith(message)


def test_the_policy_form_starts_from_the_policy_in_force() -> None:
    labelled = make_policy(
        canary="5%", waves="100%", bake=300, max_failures="10%", canary_label="ring=0"
    ).to_dict()
    immediate = make_policy(immediate=True).to_dict()
    every = rollouts.policy_form({"x86_64": labelled, "*": STAGED}, immediate)
    assert every == {
        "arches": ("x86_64", "aarch64"),
        "arch": "",
        "immediate": False,
        "canary": "1",
        "waves": "50%,100%",
        "bake": "3600",
        "maxFailures": "1",
        "canaryLabel": "",
        "canaryNodes": "",
        "maxOffline": "",
        "maxRefused": "",
        "watch": "",
        "window": "",
    }
    one_arch = rollouts.policy_form({"x86_64": labelled}, immediate)
    assert one_arch["arch"] == "x86_64"
    assert (one_arch["bake"], one_arch["canaryLabel"]) == ("300", "ring=0")
    default = rollouts.policy_form({}, immediate)
    assert (default["arch"], default["immediate"]) == ("", True)
    assert (default["waves"], default["bake"]) == ("", "")


def test_a_wave_shows_each_count_against_its_own_limit_and_why_it_waits() -> None:
    status = _status("rolling", False, [_node("web-01", "healthy"), _node("web-02", "offline")])
    status["waves"][0].update(
        tally={"failed": 0, "offline": 2, "notInstalled": 3, "refused": 1, "hostTrouble": 0,
               "baking": 0, "healthy": 1},
        offlineLimit=1,
        refusedLimit=None,
        waitingFor="2 of 7 nodes offline, over --max-offline 1 (1): the wave waits",
    )  # fmt: skip
    first, later = rollouts.shape_rollout(status, NOW)["waves"]
    assert (first["offline"], first["notInstalled"], first["refused"]) == ("2 / 1", "3", "1 / any")
    assert first["waitingFor"] == "2 of 7 nodes offline, over --max-offline 1 (1): the wave waits"
    assert (later["offline"], later["notInstalled"], later["refused"]) == ("", "", "")
    limited = make_policy(
        canary="1", waves="100%", bake=60, max_failures="1", max_offline="10%", max_refused="0"
    ).to_dict()
    assert rollouts.policy_text(limited).endswith(
        "; it waits with more than 10% of its nodes offline or more than 0 of its nodes refusing it"
    )
    assert rollouts.policy_form({"*": limited}, STAGED)["maxOffline"] == "10%"
    assert rollouts.form_policy(
        "staged", "1", "100%", "60", "1", "", "", "10%", "0"
    ) == make_policy(
        canary="1", waves="100%", bake=60, max_failures="1", max_offline="10%", max_refused="0"
    )


def test_a_watched_rollout_is_shown_with_its_watch_and_the_policy_names_it() -> None:
    assert rollouts.progress_text("watching", 2, 3, False) == "watching after every wave"
    status = _status("watching", False, [_node("web-01", "healthy")])
    status["watch"] = {"seconds": 3600, "remaining": 600, "text": "watched … 10m left"}
    shown = rollouts.shape_rollout(status, NOW)
    assert (shown["tone"], shown["watch"]) == ("info", status["watch"])
    watched = make_policy(canary="1", waves="100%", bake=60, max_failures="1", watch="90m")
    assert rollouts.policy_text(watched.to_dict()).endswith("; watched 1 h 30 min after every wave")
    assert rollouts.policy_form({"*": watched.to_dict()}, STAGED)["watch"] == "1h30m"
    assert rollouts.form_policy("staged", "1", "100%", "60", "1", "", "", "", "", "90m") == watched
