"""The audit trail (docs/security.md "The audit trail"), in this process: every change names
who made it (a person, a token and its fingerprint, the admin token), what, on what, and
from where; refusals, logins and failed logins too; GET /api/v1/admin/audit pages and
filters it; and no one can change or delete an entry, not even an admin."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

import pytest

from tests.support.answers import enrol, node_info, sha
from tests.support.inprocess import BinManagerApp, BinManagerAppFactory
from tests.support.team import admin_call, log_in, make_token, person_browser

UPLOAD = {"Content-Type": "application/octet-stream"}


def _trail(server: BinManagerApp, **filters: Any) -> list[dict[str, Any]]:
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        answer = http.get("/audit", params=filters)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def _seen(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """(actor, action, outcome, bin or target) of each entry, oldest first."""
    return [
        (row["actor"], row["action"], row["outcome"], row["binName"] or row["target"] or "")
        for row in reversed(rows)
    ]


@pytest.fixture
def server(bin_manager_app_factory: BinManagerAppFactory) -> BinManagerApp:
    return bin_manager_app_factory(node_auth="migrate")


def test_each_change_is_recorded_with_who_made_it(server: BinManagerApp) -> None:
    ci = make_token(server, "ci-web", "publisher", ["web"])
    ops = make_token(server, "ops", "operator")
    fingerprint = admin_call(server, "GET", "/tokens")[0]["fingerprint"]
    with server.client(base_url=server.api) as agent:
        for node in ("web-01", "web-02"):
            assert agent.post("/keepalive", json=node_info(node)).status_code == 200
        assert enrol(agent, "web-03", secrets.token_urlsafe(32)).status_code == 202
    headers = {"Content-Type": "application/octet-stream", "Authorization": f"Bearer {ci}"}
    as_ops = {"Authorization": f"Bearer {ops}"}
    with server.client(base_url=f"{server.api}/admin") as http:
        v1 = http.post("/bins/web/releases", content=b"v1", headers=headers).json()["data"]
        assert http.post("/bins/api/releases", content=b"no", headers=headers).status_code == 403
        for node in ("web-01", "web-02"):  # they run v1: a staged rollout of v2 includes them
            report = {
                "nodeName": node,
                "binName": "web",
                "sha256": v1["sha256"],
                "version": "latest",
            }
            assert http.post(f"{server.api}/bins/web", json=report).status_code == 200
        policy = {"canary": "1", "waves": "100%", "bakeSeconds": 3600, "maxFailures": "1"}
        assert http.put("/bins/web/rollout/policy", json=policy, headers=as_ops).status_code == 200
        http.post("/bins/web/releases", content=b"v2", headers=headers)
        for action in ("halt", "resume", "promote"):
            done = http.post(f"/bins/web/rollout/{action}", headers=as_ops)
            assert done.status_code == 200, done.text
        for path in ("/bins/web/pause", "/bins/web/resume"):
            assert http.post(path, headers=as_ops).status_code == 200
        pin = http.post("/bins/web/pin", json={"sha256": v1["sha256"]}, headers=as_ops)
        assert pin.status_code == 200, pin.text
        http.post("/bins/web/releases", content=b"v3", headers=headers)
        gone = http.delete(f"/bins/web/releases/{sha(b'v2')}", headers=as_ops)
        assert gone.status_code == 200, gone.text
        assert http.post("/credentials/web-03/approve", json={}, headers=as_ops).status_code == 200
        assert http.post("/credentials/web-03/revoke", headers=as_ops).status_code == 200
        assert http.delete("/nodes/web-02", headers=as_ops).status_code == 200
    admin_call(server, "POST", "/tokens/ops/revoke")
    with person_browser(server, "alice", "operator") as alice:
        alice.get("/dashboard/")
    with server.client(base_url=server.url) as stranger:
        assert log_in(stranger, "alice", "a wrong password for alice").status_code == 401
        assert log_in(stranger, "mallory", "anything at all 123").status_code == 401
    rows = _trail(server)
    assert _seen(rows) == [
        ("admin-token", "create-token", "ok", "ci-web"),
        ("admin-token", "create-token", "ok", "ops"),
        ("ci-web", "publish", "ok", "web"),
        ("ci-web", "publish", "refused", "api"),
        ("ops", "rollout-policy", "ok", "web"),
        ("ci-web", "publish", "ok", "web"),
        ("ops", "rollout-halt", "ok", "web"),
        ("ops", "rollout-resume", "ok", "web"),
        ("ops", "rollout-promote", "ok", "web"),
        ("ops", "pause", "ok", "web"),
        ("ops", "resume", "ok", "web"),
        ("ops", "pin", "ok", "web"),
        ("ci-web", "publish", "ok", "web"),
        ("ops", "delete-release", "ok", "web"),
        ("ops", "approve-node", "ok", "web-03"),
        ("ops", "revoke-node", "ok", "web-03"),
        ("ops", "delete-node", "ok", "web-02"),
        ("admin-token", "revoke-token", "ok", "ops"),
        ("admin-token", "add-user", "ok", "alice"),
        ("alice", "login", "ok", "alice"),
        ("alice", "change-password", "ok", "alice"),
        ("alice", "login", "failed", "alice"),
        ("(unknown name)", "login", "failed", ""),
    ]
    by_action = {(row["action"], row["outcome"]): row for row in rows}
    published = rows[-3]
    assert published["actorKind"] == "token"
    assert published["fingerprint"] == fingerprint
    assert published["sha256"] == v1["sha256"]
    assert published["arch"] == "x86_64"
    assert published["address"] == "127.0.0.1"
    assert by_action[("pin", "ok")]["sha256"] == v1["sha256"]
    assert by_action[("delete-release", "ok")]["sha256"] == sha(b"v2")
    assert by_action[("publish", "refused")]["detail"] == "lacks publish"
    assert [rows[0]["detail"], rows[1]["detail"]] == ["no such person", "wrong password"]
    assert "mallory" not in str(rows)  # a name that is none may be a password typed there


def test_the_trail_is_filtered_and_paged_newest_first(server: BinManagerApp) -> None:
    ci = make_token(server, "ci", "publisher")
    with server.client(
        base_url=f"{server.api}/admin", headers={**UPLOAD, "Authorization": f"Bearer {ci}"}
    ) as http:
        for n in range(5):
            http.post(f"/bins/{'web' if n % 2 else 'api'}/releases", content=f"v{n}".encode())
    assert [row["binName"] for row in _trail(server, actor="ci")] == [
        "api",
        "web",
        "api",
        "web",
        "api",
    ]
    assert len(_trail(server, bin="web", action="publish")) == 2
    assert _trail(server, action="pin") == []
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        first = http.get("/audit", params={"limit": 2, "actor": "ci"})
        body = first.json()
        assert [row["binName"] for row in body["data"]] == ["api", "web"]
        assert 'rel="next"' in first.headers["link"]
        rest = http.get("/audit", params={"limit": 10, "actor": "ci", "before": body["next"]})
        assert [row["binName"] for row in rest.json()["data"]] == ["api", "web", "api"]
        assert rest.json()["next"] is None
        assert http.get("/audit", params={"limit": 0}).status_code == 422


def test_no_one_can_change_or_delete_an_entry(server: BinManagerApp) -> None:
    server.publish("web", b"v1")
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        entry = http.get("/audit").json()["data"][0]["id"]
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            for path in ("/audit", f"/audit/{entry}"):
                assert http.request(method, path).status_code in (404, 405), (method, path)
    with sqlite3.connect(server.data_dir / "bin-manager.sqlite3") as db:
        for statement in (
            "UPDATE audit_entries SET actor_name = 'someone else'",
            "DELETE FROM audit_entries",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
    assert _trail(server)[0]["actor"] == "admin-token"
