"""`rollout plan` (issue 29.7), on a real SQLite database with the clock given (the Fleet
of test_lifecycle.py): the waves it shows are those a publish then starts (one ordering
code, planning.plan, used by both), each with when it starts at the earliest; nothing
changes by asking."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Event, Rollout
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.planning import plan_view
from ansible_proxy.server.rollouts.policy import IMMEDIATE
from tests.unit.server.rollouts.test_lifecycle import ARCH, BAKE, NODES, Fleet, fleet

__all__ = ["fleet"]


def planned(fleet: Fleet) -> dict[str, Any]:
    with fleet.sessions() as session:
        view = plan_view(session, fleet.ctx, queries.require_bin(session, "web"), None, fleet.now)
        session.commit()
    found: dict[str, Any] = view["plans"][0]
    return found


def counted(fleet: Fleet) -> tuple[int, int]:
    with fleet.sessions() as session:
        rollouts = session.scalar(select(func.count()).select_from(Rollout)) or 0
        events = session.scalar(select(func.count()).select_from(Event)) or 0
    return rollouts, events


def test_the_plan_is_what_a_publish_then_starts(fleet: Fleet) -> None:
    fleet.ctx = Context(default_policy=IMMEDIATE, silent_seconds=180, stale_seconds=3600)
    fleet.register(NODES[0], labels={"ring": "0"})
    fleet.set_policy(canary="1", waves="50%,100%", bake=BAKE, max_failures="1",
                     canary_label="reported:ring=0", watch="1h")  # fmt: skip
    fleet.wait(3600 + 60)
    fleet.seen(*NODES[:5])  # web-05 not heard for over an hour: left out, and said so
    before = counted(fleet)
    shown = planned(fleet)
    assert counted(fleet) == before  # asking changes nothing
    assert shown["arch"] == ARCH
    assert (shown["policySource"], shown["note"]) == ("bin", None)
    assert shown["waves"][0]["nodes"] == [NODES[0]]  # the labelled canary
    assert [wave["earliestSeconds"] for wave in shown["waves"]] == [0, BAKE, 2 * BAKE]
    assert shown["completesAfterSeconds"] == 3 * BAKE + 3600
    assert [(node["name"], node["reason"][:6]) for node in shown["leftOut"]] == [
        (NODES[5], "stale:")
    ]

    fleet.publish(b"v2")
    assert fleet.waves() == [sorted(wave["nodes"]) for wave in shown["waves"]]  # by name
    assert [node["name"] for node in fleet.status()["rollouts"][0]["leftOut"]] == [NODES[5]]


def test_an_immediate_policy_plans_everyone_at_the_publish(fleet: Fleet) -> None:
    fleet.set_policy(immediate=True)
    shown = planned(fleet)
    assert shown["note"] == "immediate: a publish tells every node at once"
    assert [(wave["name"], wave["size"], wave["earliestSeconds"]) for wave in shown["waves"]] == [
        ("everyone", len(NODES), 0)
    ]
    assert shown["completesAfterSeconds"] is None
