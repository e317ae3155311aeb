"""How the dashboard words a progress event: who rolled back and why."""

from __future__ import annotations

from typing import Any

from ansible_proxy.server.dashboard.views import because, explain

V1, V2 = "1" * 64, "2" * 64


def _row(node: str, target: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "nodeName": node,
        "binName": "web",
        "targetHash": target,
        "status": status,
        "reason": reason,
    }


def test_the_reason_says_who_and_why() -> None:
    assert because(None) is None
    assert because("") is None
    assert because("inspector: alerts: firing HighErrorRate") == (
        "by the inspector: alerts: firing HighErrorRate"
    )
    assert because("watch: web is BACKOFF after restart (exit status 3)") == (
        "by the agent's watch: web is BACKOFF after restart (exit status 3)"
    )
    assert because("Pin: moved back to 1e133a643068 (withdrawn: 61ba3d2015b5)") == (
        "by the bin-manager's move back (a pin or a reverted rollout): "
        "moved back to 1e133a643068 (withdrawn: 61ba3d2015b5)"
    )
    assert because("disk full") == "— disk full"  # no known decider: the reason as given
    assert because("cron: ran twice") == "— cron: ran twice"


def test_a_failure_after_a_good_upgrade_is_a_rollback() -> None:
    rows = [  # newest first, as the listings return them
        _row("a", V2, "failed", "inspector: port 8080 closed"),
        _row("b", V2, "failed"),  # had upgraded fine: a rollback even without a reason
        _row("c", V2, "failed", "watch: web is FATAL"),  # a failed upgrade
        _row("d", V1, "success", "pin: moved back to 111111111111"),
        _row("b", V2, "success"),
        _row("b", V2, "in_progress"),
    ]
    explain(rows)
    assert [row["event"] for row in rows] == [
        "rollback",
        "rollback",
        "failed",
        "moved-back",
        "success",
        "in_progress",
    ]
    assert rows[2]["because"] == "by the agent's watch: web is FATAL"
    assert rows[1]["because"] is None
