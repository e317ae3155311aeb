"""Only nodes that can take part are judged, and every halted or waiting state has a way out
(issue 26.3), with real agents: a canary that failed is named with the command that lets
it try again after the fix; a canary offline at the publish is baked when it comes back;
a held node is skipped by its wave; a revoked node is left out; a paused bin promotes no
wave; a rollout that waits too long says so once, by webhook and on the dashboard."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.integration.rollouts.test_notifications import events
from tests.integration.server.test_webhooks import Receiver
from tests.support.fleet_hosts import ARCH, Fleet, program
from tests.support.procs import free_port, wait_until

THREE = NODES[:3]
SILENT = 6  # BIN_MANAGER_ROLLOUT_SILENT_SECONDS: hosts ticked in a loop stay well inside it


def fragile(tag: str) -> bytes:
    """A program that exits at start while its host has a file `broken` beside BIN_DIR (a
    host-side fault an operator can fix), and runs otherwise."""
    return f"""#!{sys.executable}
# test program, version {tag}
import os, sys, time
root = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
if os.path.exists(os.path.join(root, "broken")):
    sys.exit(3)
while True:
    time.sleep(3600)
""".encode()


def policy(*canary: str, bake: int = 2) -> tuple[str, ...]:
    """One canary (named), then everyone."""
    named = ("--canary-nodes", ",".join(canary)) if canary else ()
    return (*named, "--canary", "1", "--waves", "100%", "--bake", str(bake),
            "--max-failures", "1")  # fmt: skip


def tick_until(
    fleet: Fleet,
    until: Callable[[dict[str, Any]], bool],
    what: str,
    nodes: Iterable[str] | None = None,
    expect: tuple[int, ...] = (0,),
    timeout: float = 90,
) -> dict[str, Any]:
    """Tick `nodes` (default every host) over and over, so that each stays heard, until
    `until(rollout)`; the rollout then."""
    chosen = list(fleet.hosts if nodes is None else nodes)
    deadline = time.monotonic() + timeout
    while True:
        rollout = fleet.rollout()
        if until(rollout):
            return rollout
        assert time.monotonic() < deadline, f"{what}: {json.dumps(rollout, indent=1)}"
        fleet.tick(chosen, expect=expect)


def bin_page(fleet: Fleet) -> str:
    """The dashboard's page of the bin, as a logged-in operator sees it."""
    base = f"{fleet.server.url}/dashboard"
    with fleet.server.client(follow_redirects=True) as http:
        form = http.get(f"{base}/login").text
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', form)
        assert found, form
        logged_in = http.post(
            f"{base}/login", data={"token": fleet.server.admin_token, "csrf": found[1]}
        )
        assert logged_in.status_code == 200, logged_in.text
        page = http.get(f"{base}/bins/{fleet.bin_name}")
    assert page.status_code == 200, page.text
    return page.text


def completed(rollout: dict[str, Any]) -> bool:
    return bool(rollout["state"] == "completed")


def member(rollout: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        node for wave in rollout["waves"] for node in wave["nodes"] if node["name"] == name
    )
    return found


def test_a_failed_canary_is_named_with_the_command_that_lets_it_try_again(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet(nodes=THREE)
    v1 = fleet.install(program("1"))
    fleet.set_policy(*policy("host-1"))
    broken = fleet["host-1"].root / "broken"
    broken.write_text("a disk this release needs is missing\n")

    v2 = fleet.server.publish("web", fragile("2"))
    fleet.tick(["host-1"], expect=(1,))
    rollout = fleet.wait_rollout("the canary's failure halts", state="halted", reverted=True)
    assert member(rollout, "host-1")["state"] == "failed"
    assert fleet["host-1"].history()[v2] == "err"

    broken.unlink()  # the operator fixes the host, then resumes
    resumed = fleet.cli("rollout", "resume", "web")
    command = f"ansible-proxy forget web {v2}"
    assert "host-1" in resumed.stdout, resumed.stdout
    assert command in resumed.stdout, resumed.stdout
    rollout = fleet.rollout()
    assert rollout["state"] == "rolling"
    canary = member(rollout, "host-1")
    assert canary["state"] == "quarantined", canary
    assert command in canary["reason"]
    status = fleet.cli("rollout", "status", "web").stdout
    assert "quarantined" in status, status
    assert command in status, status

    # The agent keeps its quarantine until told on the host: nothing moves meanwhile.
    fleet.tick(["host-1"])
    assert fleet["host-1"].sha() == v1
    forgot = fleet["host-1"].run("web", v2, command="forget")
    assert forgot.returncode == 0, fleet["host-1"].debug(forgot)
    tick_until(fleet, completed, "the rollout completes once the canary tried again")
    assert fleet.shas() == dict.fromkeys(THREE, v2)
    assert [e["kind"] for e in fleet.events()].count("rollout-halt") == 1


def test_a_canary_offline_at_the_publish_is_baked_when_it_comes_back(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet(nodes=THREE, extra_env={"BIN_MANAGER_ROLLOUT_SILENT_SECONDS": str(SILENT)})
    fleet.install(program("1"))
    fleet.set_policy(*policy("host-1"))
    time.sleep(SILENT + 1)  # host-1 is not heard for longer than the silent window
    fleet.tick(["host-2", "host-3"])

    v2 = fleet.server.publish("web", program("2"))
    assert member(fleet.rollout(), "host-1")["state"] == "offline"
    tick_until(fleet, completed, "the canary, back, is baked and the rollout goes on")
    assert fleet.shas() == dict.fromkeys(THREE, v2)
    kinds = [e["kind"] for e in fleet.events()]
    assert "rollout-halt" not in kinds, kinds


def test_a_held_node_is_skipped_by_its_wave_and_shown_held(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=THREE)
    v1 = fleet.install(program("1"))
    fleet.set_policy(*policy("host-1"))
    v2 = fleet.server.publish("web", program("2"))

    held = fleet["host-3"].run("web", "--reason", "disk swap", command="hold")
    assert held.returncode == 0, fleet["host-3"].debug(held)
    rollout = tick_until(fleet, completed, "the rollout completes without the held node")
    assert member(rollout, "host-3")["state"] == "held"
    assert "disk swap" in member(rollout, "host-3")["reason"]
    assert fleet.shas() == {"host-1": v2, "host-2": v2, "host-3": v1}
    assert "held" in fleet.cli("rollout", "status", "web").stdout
    page = bin_page(fleet)
    assert 'data-node="host-3"' in page
    assert "disk swap" in page

    released = fleet["host-3"].run("web", command="release")
    assert released.returncode == 0, fleet["host-3"].debug(released)
    fleet.tick(["host-3"])
    assert fleet["host-3"].sha() == v2


def test_a_revoked_node_is_left_out_of_a_new_rollout(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=THREE)
    fleet.install(program("1"))
    fleet.cli("nodes", "revoke", "host-2")
    fleet.set_policy(*policy("host-2"))  # the operator's canary, revoked since

    v2 = fleet.server.publish("web", program("2"))
    rollout = fleet.rollout()
    assert "host-2" not in [name for wave in fleet.waves() for name in wave]
    assert [(node["name"], node["reason"]) for node in rollout["leftOut"]] == [
        ("host-2", "revoked: its credential was revoked")
    ]
    start = next(e for e in fleet.events() if e["kind"] == "rollout-start")
    assert "left out: host-2 (revoked" in start["detail"], start
    assert "host-2 (revoked" in fleet.cli("rollout", "status", "web").stdout
    tick_until(fleet, completed, "the rollout completes", nodes=["host-1", "host-3"])
    assert fleet["host-1"].sha() == fleet["host-3"].sha() == v2


def test_a_paused_bin_promotes_no_wave_and_says_so(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=THREE)
    v1 = fleet.install(program("1"))
    # A bake long enough that the pause lands before it ends, even on a loaded machine
    # (with 1 s the check could promote between the canary's tick and the pause).
    fleet.set_policy(*policy("host-1", bake=8))
    v2 = fleet.server.publish("web", program("2"))
    fleet.tick(["host-1"])
    fleet.cli("pause", "web")

    status = fleet.status()
    assert status["paused"] is True
    assert fleet.rollout()["paused"] is True
    assert "paused" in fleet.cli("rollout", "status", "web").stdout.splitlines()[0]
    healthy = tick_until(
        fleet,
        lambda rollout: member(rollout, "host-1")["state"] == "healthy",
        "the canary bakes while paused",
        nodes=["host-1"],
    )
    for _ in range(3):  # several checks after the bake: none promotes a paused bin
        time.sleep(1)
        fleet.tick(["host-1"])
    assert (fleet.rollout()["wave"], healthy["wave"]) == (0, 0)
    assert "rollout-promote" not in [e["kind"] for e in fleet.events()]

    # An operator's promote while paused starts the wave, and the log says nobody is told.
    fleet.cli("rollout", "promote", "web")
    promote = [e for e in fleet.events() if e["kind"] == "rollout-promote"][-1]
    assert "paused" in promote["detail"], promote
    assert "nodes told" not in promote["detail"], promote
    assert {node: fleet.told(node) for node in ("host-2", "host-3")} == {
        "host-2": v1,
        "host-3": v1,
    }
    fleet.cli("resume", "web")
    tick_until(fleet, completed, "the rollout completes once resumed")
    assert fleet.shas() == dict.fromkeys(THREE, v2)


def test_a_stuck_rollout_sends_one_webhook_and_shows_on_the_dashboard(
    make_fleet: MakeFleet,
) -> None:
    receiver = Receiver(free_port()).start()
    try:
        fleet = make_fleet(
            nodes=THREE,
            extra_env={
                "BIN_MANAGER_WEBHOOK_URLS": f"{receiver.url()}#secret=rollout-hook-s3cret",
                "NO_PROXY": "127.0.0.1",
                "BIN_MANAGER_ROLLOUT_SILENT_SECONDS": str(SILENT),
                "BIN_MANAGER_ROLLOUT_STUCK_SECONDS": "2",
            },
        )
        fleet.install(program("1"))
        fleet.set_policy(*policy("host-1", bake=1))
        time.sleep(SILENT + 1)  # the canary is offline at the publish, and stays away
        v2 = fleet.server.publish("web", program("2"))

        def stuck() -> bool:
            return "rollout-stuck" in [event for event, _ in events(receiver)]

        wait_until(stuck, 30, "the rollout-stuck webhook")
        time.sleep(3)  # more checks: still one notice for this wave
        notices = [body for event, body in events(receiver) if event == "rollout-stuck"]
        assert len(notices) == 1, notices
        assert "host-1 (offline" in notices[0]["text"], notices
        assert notices[0]["data"]["release"] == v2
        rollout = fleet.rollout()
        assert rollout["stuck"] is not None, rollout
        assert rollout["stuck"]["waitingOn"][0]["name"] == "host-1", rollout
        page = bin_page(fleet)
        assert 'data-event="rollout-stuck"' in page
        assert "host-1 (offline" in page

        tick_until(fleet, completed, "the canary comes back: the rollout goes on")
        assert set(fleet.shas().values()) == {v2}
    finally:
        receiver.stop()


def test_publishing_during_a_rollout_says_what_it_supersedes(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=THREE)
    v1 = fleet.install(program("1"))
    fleet.set_policy(*policy("host-1", bake=3600))
    v2 = fleet.server.publish("web", program("2"))
    fleet.tick(["host-1"])
    artifact = fleet["host-1"].root / "v3"
    artifact.write_bytes(program("3"))
    published = fleet.cli("publish", str(artifact), "--name", "web", "--arch", ARCH)
    v3 = published.stdout.strip()
    assert len(v3) == 64, published.stdout
    note = published.stderr
    assert f"supersedes the rollout of {v2[:12]}" in note, note
    assert f"withdraws {v2[:12]} (told to 1 node: host-1)" in note, note
    assert f"are told {v1[:12]}" in note, note
    superseded = next(e for e in fleet.events() if e["kind"] == "rollout-superseded")
    assert f"superseded by the publish of {v3[:12]}" in superseded["detail"], superseded
    assert "host-1" in superseded["detail"], superseded
