"""Rollout webhooks end to end: a real receiver on 127.0.0.1 gets each step signed with
its secret, and a step queued while the receiver is down is delivered after the server
restarts and the receiver is back."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.integration.server.test_webhooks import Receiver
from tests.support.fleet_hosts import Fleet, program
from tests.support.loopback import Seen as Request
from tests.support.procs import free_port, wait_until

SECRET = "rollout-hook-s3cret"


def events(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    """(event, body) of each request received, each checked for its signature and text."""
    found = []
    for request in receiver.received():
        check_signed(request)
        body = json.loads(request.body)
        assert body["event"] == request.headers["x-bin-manager-event"]
        assert isinstance(body["text"], str), body
        assert body["text"].startswith("web"), body
        found.append((body["event"], body))
    return found


def check_signed(request: Request) -> None:
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-bin-manager-signature"] == f"sha256={expected}"


def wait_for(receiver: Receiver, wanted: list[str], what: str, timeout: float = 30) -> None:
    def arrived() -> bool:
        got = [event for event, _ in events(receiver) if event in wanted]
        return all(event in got for event in wanted)

    try:
        wait_until(arrived, timeout, what)
    except TimeoutError:
        raise AssertionError(f"{what}: got {[e for e, _ in events(receiver)]}") from None


def hooked(make_fleet: MakeFleet, receiver: Receiver, nodes: int = 5) -> Fleet:
    """A fleet whose server sends its webhooks to `receiver`, v1 installed everywhere."""
    fleet = make_fleet(
        nodes=NODES[:nodes],
        extra_env={
            "BIN_MANAGER_WEBHOOK_URLS": f"{receiver.url()}#secret={SECRET}",
            "NO_PROXY": "127.0.0.1",
        },
    )
    fleet.install(program("1"))
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "2", "--max-failures", "1")
    return fleet


def test_rollout_steps_are_signed_webhooks_and_survive_a_restart(make_fleet: MakeFleet) -> None:
    receiver = Receiver(free_port()).start()
    try:
        fleet = hooked(make_fleet, receiver)
        v1 = fleet.hosts["host-1"].sha()
        v2 = fleet.server.publish("web", program("2"))
        fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
        wanted = ["rollout-started", "wave-promoted", "rollout-completed"]
        wait_for(receiver, wanted, "the good rollout's steps")
        got = events(receiver)
        assert [event for event, _ in got] == wanted
        for _, body in got:
            assert (body["data"]["binName"], body["data"]["release"]) == ("web", v2)
            assert body["data"]["previous"] == v1
        assert "the canary" in got[0][1]["text"]
        promoted = got[1][1]
        assert "wave 1 started" in promoted["text"]
        assert v2[:12] in promoted["text"]

        # The receiver is down: the start, the halt and the revert wait in the queue, over
        # a restart.
        receiver.stop()
        v3 = fleet.server.publish("web", program("3", "exit"))
        canary = fleet.waves()[0][0]
        fleet.tick([canary], expect=(1,))
        fleet.wait_rollout("the rollout halts", state="halted", reverted=True)
        fleet.server.stop()
        fleet.server.start()
        receiver.start()
        wanted = ["rollout-started", "node-rollback", "rollout-halted", "rollout-reverted"]
        wait_for(receiver, wanted, "the queued start, failure, halt and revert")
        late = {event: body for event, body in events(receiver)[len(got) :]}
        assert set(late) == set(wanted)
        assert late["node-rollback"]["data"]["sha256"] == v3
        assert late["node-rollback"]["data"]["nodeName"] == canary
        assert late["rollout-halted"]["data"]["release"] == v3
        assert late["rollout-halted"]["data"]["state"] == "halted"
        assert canary in late["rollout-halted"]["text"]
        assert late["rollout-reverted"]["data"]["reverted"] is True
        assert f"every node is told {v2[:12]} again" in late["rollout-reverted"]["text"]
        assert SECRET not in fleet.server.service.log()
    finally:
        receiver.stop()


def test_the_start_of_a_rollout_is_announced(make_fleet: MakeFleet) -> None:
    receiver = Receiver(free_port()).start()
    try:
        fleet = hooked(make_fleet, receiver, nodes=2)
        v2 = fleet.server.publish("web", program("2"))
        assert fleet.rollout()["release"] == v2
        wait_for(receiver, ["rollout-started"], "the start of the rollout", timeout=10)
        started = next(body for event, body in events(receiver) if event == "rollout-started")
        assert v2[:12] in started["text"]
    finally:
        receiver.stop()
