"""Node credentials against a real server (issue 14): forged writes refused and nothing
changed, enrolment, approval and revocation from the CLI, a proxy scoped to its nodes,
throttling, and migration mode (docs/security.md)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.integration.server.checks import envelope, node_info
from tests.integration.server.test_cli import cli
from tests.support.server import BinManager, BinManagerFactory

SHA = "c" * 64


def _token() -> str:
    return secrets.token_urlsafe(32)


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def enrol(
    http: httpx.Client, name: str, node_token: str | None, auth: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = node_info(name)
    if node_token is not None:
        body["nodeToken"] = node_token
    return http.post("/enrol", json=body, headers=_bearer(auth))


def _writes(http: httpx.Client, name: str, token: str | None) -> list[int]:
    """POST /keepalive, progress and report about `name`, and GET /keepalive: statuses."""
    headers = _bearer(token)
    forged = {**node_info(name), "osRelease": "forged"}
    progress = {"nodeName": name, "binName": "app", "targetHash": SHA, "processingTime": 1,
                "status": "failed"}  # fmt: skip
    report = {"nodeName": name, "binName": "app", "sha256": SHA}
    return [
        http.post("/keepalive", json=forged, headers=headers).status_code,
        http.post("/bins/app/progress", json=progress, headers=headers).status_code,
        http.post("/bins/app", json=report, headers=headers).status_code,
        http.get("/keepalive", params={"nodeName": name}, headers=headers).status_code,
    ]


@pytest.fixture
def required(bin_manager_factory: BinManagerFactory) -> BinManager:
    server = bin_manager_factory(node_auth="required")
    server.publish("app", b"app v1")
    return server


def test_forged_writes_about_an_enrolled_node_are_refused_and_change_nothing(
    required: BinManager,
) -> None:
    own, other = _token(), _token()
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", own, required.enrolment_token).status_code == 201
        assert enrol(http, "web-02", other, required.enrolment_token).status_code == 201
        before = envelope(required.admin_get("/nodes/web-01"), 200)["data"]

        assert _writes(http, "web-01", None) == [401, 401, 401, 401]
        assert _writes(http, "web-01", other) == [403, 403, 403, 403]
        assert _writes(http, "web-01", required.admin_token) == [401] * 4  # no node's token
        anonymous_new = http.post("/keepalive", json=node_info("ghost-01"))
        assert anonymous_new.status_code == 401
        assert "POST /api/v1/enrol" in anonymous_new.json()["message"]

        after = envelope(required.admin_get("/nodes/web-01"), 200)["data"]
        assert after == before  # no forged OS, no progress, no report, not refreshed
        names = [n["nodeName"] for n in envelope(required.admin_get("/nodes"), 200)["data"]]
        assert "ghost-01" not in names

        # The node itself may write all of it.
        assert _writes(http, "web-01", own) == [200, 200, 200, 200]
        node = envelope(required.admin_get("/nodes/web-01"), 200)["data"]
        assert node["progress"][0]["status"] == "failed"


def test_a_bound_name_is_a_conflict_and_a_weak_node_token_is_refused(required: BinManager) -> None:
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", _token(), required.enrolment_token).status_code == 201
        taken = enrol(http, "web-01", _token(), required.enrolment_token)
        assert taken.status_code == 409
        assert "revoke" in taken.json()["message"]
        assert enrol(http, "web-03", "short", required.enrolment_token).status_code == 422
        wrong = enrol(http, "web-04", _token(), "wrong-enrolment-token-0123456789")
        assert wrong.status_code == 401


def test_pending_enrolment_is_approved_from_the_cli_with_its_fingerprint(
    required: BinManager,
) -> None:
    token = _token()
    with required.client(base_url=required.api) as http:
        pending = enrol(http, "edge-01", token)
        assert pending.status_code == 202
        fingerprint = pending.json()["data"]["fingerprint"]
        assert pending.json()["data"]["status"] == "pending"
        assert _writes(http, "edge-01", token)[0] == 401  # not yet

        listed = cli(required, "nodes", "list", "--pending")
        assert listed.returncode == 0, listed.stderr
        assert "edge-01" in listed.stdout
        assert fingerprint in listed.stdout
        refused = cli(required, "nodes", "approve", "edge-01", "--fingerprint", "0" * 12)
        assert refused.returncode == 2
        assert fingerprint in refused.stderr
        approved = cli(required, "nodes", "approve", "edge-01", "--fingerprint", fingerprint)
        assert approved.returncode == 0, approved.stderr

        assert _writes(http, "edge-01", token) == [200, 200, 200, 200]
        assert required.credential("edge-01")["status"] == "enrolled"
        assert required.credential("edge-01")["fingerprint"] == fingerprint
        assert "edge-01" not in cli(required, "nodes", "list", "--pending").stdout


def test_a_revoked_node_is_refused_and_comes_back_only_by_approval(required: BinManager) -> None:
    token = _token()
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", token, required.enrolment_token).status_code == 201
        revoked = cli(required, "nodes", "revoke", "web-01")
        assert revoked.returncode == 0, revoked.stderr
        answer = http.post("/keepalive", json=node_info("web-01"), headers=_bearer(token))
        assert answer.status_code == 401
        assert "revoked" in answer.json()["message"]
        # A stolen enrolment token does not undo a revocation.
        again = enrol(http, "web-01", _token(), required.enrolment_token)
        assert again.status_code == 202
        assert required.credential("web-01")["status"] == "revoked"
        assert cli(required, "nodes", "approve", "web-01").returncode == 0
        assert required.credential("web-01")["status"] == "enrolled"
        assert _writes(http, "web-01", token)[0] == 401  # the old token stays dead


def test_a_proxy_speaks_only_for_the_nodes_it_enrolled(required: BinManager) -> None:
    created = cli(required, "proxies", "create", "cluster-a")
    assert created.returncode == 0, created.stderr
    proxy = created.stdout.strip()
    other = required.create_proxy("cluster-b")
    node_token = _token()
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", node_token, required.enrolment_token).status_code == 201
        # Its inventory's nodes: enrolled as its own by its first keepalive.
        assert _writes(http, "c-01", proxy) == [200, 200, 200, 200]
        assert required.credential("c-01")["proxy"] == "cluster-a"
        assert _writes(http, "web-01", proxy) == [403, 403, 403, 403]
        assert _writes(http, "c-01", other) == [403, 403, 403, 403]
        assert _writes(http, "c-01", node_token) == [403, 403, 403, 403]
        assert cli(required, "proxies", "revoke", "cluster-a").returncode == 0
        assert _writes(http, "c-01", proxy) == [401, 401, 401, 401]


def test_flooding_bad_tokens_and_enrolments_is_throttled_while_a_correct_client_gets_through(
    bin_manager_factory: BinManagerFactory,
) -> None:
    server = bin_manager_factory(
        node_auth="required",
        extra_env={"BIN_MANAGER_AUTH_FAILURE_BURST": "10", "BIN_MANAGER_ENROL_BURST": "10"},
    )
    server.publish("app", b"app v1")
    token = _token()
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        server.client(base_url=server.api) as http,
        server.client(base_url=server.api, transport=elsewhere) as good,
    ):
        assert enrol(good, "web-01", token, server.enrolment_token).status_code == 201
        statuses = [
            http.post(
                "/keepalive", json=node_info("web-01"), headers=_bearer(f"guess-{i:040d}")
            ).status_code
            for i in range(40)
        ]
        assert statuses[:10] == [401] * 10
        assert set(statuses[12:]) == {429}
        limited = http.get("/keepalive", params={"nodeName": "web-01"}, headers=_bearer("x" * 43))
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        admin = http.get(f"{server.api}/admin/bins", headers=_bearer("wrong-admin-token-123456"))
        assert admin.status_code == 429

        # Enrolments share one budget per /24: `good` (127.0.0.2) took one of its ten.
        enrolments = [enrol(http, f"new-{i}", _token()).status_code for i in range(30)]
        assert enrolments[:9] == [202] * 9
        assert set(enrolments[11:]) == {429}

        # Another address, with the right credential: not slowed down.
        assert _writes(good, "web-01", token) == [200, 200, 200, 200]
        assert envelope(good.get(f"{server.api}/admin/bins", headers=server.admin_headers), 200)


def test_migration_mode_lets_unenrolled_nodes_write_as_before_but_not_enrolled_ones(
    bin_manager_factory: BinManagerFactory,
) -> None:
    server = bin_manager_factory(node_auth="migrate")
    server.publish("app", b"app v1")
    token = _token()
    with server.client(base_url=server.api) as http:
        assert _writes(http, "old-01", None) == [200, 200, 200, 200]
        pending = enrol(http, "old-02", _token())
        assert pending.status_code == 202
        assert pending.json()["data"]["legacyWrites"] is True
        assert _writes(http, "old-02", None)[0] == 200
        # An existing registered node claims its name once, with the enrolment token.
        assert enrol(http, "old-01", token, server.enrolment_token).status_code == 201
        assert _writes(http, "old-01", None) == [401, 401, 401, 401]
        assert _writes(http, "old-01", token) == [200, 200, 200, 200]
        assert server.credential("old-02")["status"] == "none"
        assert server.credential("old-02")["pending"] is not None
