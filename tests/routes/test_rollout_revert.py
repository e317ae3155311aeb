"""POST /api/v1/admin/bins/{bin}/rollout/revert (issue 29.6), in this process: every node
is told the release before at once, with a reason that the activity log and the audit
trail keep; no reason, one clear 400 and nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.inprocess import BinManagerApp, BinManagerAppFactory


@pytest.fixture
def server(bin_manager_app_factory: BinManagerAppFactory) -> BinManagerApp:
    return bin_manager_app_factory(node_auth="migrate")


def _revert(server: BinManagerApp, body: dict[str, Any]) -> Any:
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        return http.post("/bins/web/rollout/revert", json=body)


def _told(server: BinManagerApp) -> str:
    with server.client(base_url=server.api) as http:
        answer = http.get("/bins/web", params={"arch": "x86_64", "nodeName": "web-01"})
    assert answer.status_code == 200, answer.text
    sha: str = answer.json()["data"]["sha256"]
    return sha


def test_a_revert_needs_a_reason_and_is_kept_in_the_log_and_the_audit_trail(
    server: BinManagerApp,
) -> None:
    v1 = server.publish("web", b"v1")
    v2 = server.publish("web", b"v2")
    for body in ({}, {"reason": "  "}, {"reason": "two\nlines"}):
        refused = _revert(server, body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["message"] == (
            "a revert needs a reason: one line saying why (--reason)"
        )
    assert _told(server) == v2  # nothing changed

    done = _revert(server, {"reason": "error rate up after v2"})
    assert done.status_code == 200, done.text
    assert done.json()["data"]["done"] == [
        f"web (x86_64): reverted at once: every node is told {v1[:12]} again, "
        f"{v2[:12]} is marked bad (error rate up after v2)"
    ]
    assert _told(server) == v1
    events = server.admin_get("/events").json()["data"]
    revert = next(event for event in events if event["kind"] == "rollout-revert")
    assert "error rate up after v2" in revert["detail"]
    trail = server.admin_get("/audit").json()["data"]
    entry = next(row for row in trail if row["action"] == "rollout-revert")
    assert (entry["outcome"], entry["binName"], entry["detail"]) == (
        "ok", "web", "reason: error rate up after v2",
    )  # fmt: skip
    again = _revert(server, {"reason": "once more"})
    assert again.status_code == 409, again.text
    assert "no release before" in again.json()["message"]
