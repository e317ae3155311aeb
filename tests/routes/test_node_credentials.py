"""Node credentials (issue 14) in the app: forged writes refused and nothing changed, a
bound name, a weak node token, throttling, and migration mode (docs/security.md).
Approval and revocation from the CLI: tests/integration/server/test_node_credentials.py."""

from __future__ import annotations

import secrets

import pytest

from tests.support.answers import bearer_header, enrol, envelope, node_info, writes
from tests.support.inprocess import BinManagerApp, BinManagerAppFactory


def _token() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def required(bin_manager_app_factory: BinManagerAppFactory) -> BinManagerApp:
    server = bin_manager_app_factory(node_auth="required")
    server.publish("app", b"app v1")
    return server


def test_forged_writes_about_an_enrolled_node_are_refused_and_change_nothing(
    required: BinManagerApp,
) -> None:
    own, other = _token(), _token()
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", own, required.enrolment_token).status_code == 201
        assert enrol(http, "web-02", other, required.enrolment_token).status_code == 201
        before = envelope(required.admin_get("/nodes/web-01"), 200)["data"]

        assert writes(http, "web-01", None) == [401, 401, 401, 401]
        assert writes(http, "web-01", other) == [403, 403, 403, 403]
        assert writes(http, "web-01", required.admin_token) == [401] * 4  # no node's token
        anonymous_new = http.post("/keepalive", json=node_info("ghost-01"))
        assert anonymous_new.status_code == 401
        assert "POST /api/v1/enrol" in anonymous_new.json()["message"]

        after = envelope(required.admin_get("/nodes/web-01"), 200)["data"]
        assert after == before  # no forged OS, no progress, no report, not refreshed
        names = [n["nodeName"] for n in envelope(required.admin_get("/nodes"), 200)["data"]]
        assert "ghost-01" not in names

        # The node itself may write all of it.
        assert writes(http, "web-01", own) == [200, 200, 200, 200]
        node = envelope(required.admin_get("/nodes/web-01"), 200)["data"]
        assert node["progress"][0]["status"] == "failed"


def test_a_bound_name_is_a_conflict_and_a_weak_node_token_is_refused(
    required: BinManagerApp,
) -> None:
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", _token(), required.enrolment_token).status_code == 201
        taken = enrol(http, "web-01", _token(), required.enrolment_token)
        assert taken.status_code == 409
        assert "revoke" in taken.json()["message"]
        assert enrol(http, "web-03", "short", required.enrolment_token).status_code == 422
        wrong = enrol(http, "web-04", _token(), "wrong-enrolment-token-0123456789")
        assert wrong.status_code == 401


def test_flooding_bad_tokens_and_enrolments_is_throttled_while_a_correct_client_gets_through(
    bin_manager_app_factory: BinManagerAppFactory,
) -> None:
    server = bin_manager_app_factory(node_auth="required", auth_failure_burst=10, enrol_burst=10)
    server.publish("app", b"app v1")
    token = _token()
    with (
        server.client(base_url=server.api) as http,
        server.client(base_url=server.api, address="127.0.0.2") as good,
    ):
        assert enrol(good, "web-01", token, server.enrolment_token).status_code == 201
        statuses = [
            http.post(
                "/keepalive", json=node_info("web-01"), headers=bearer_header(f"guess-{i:040d}")
            ).status_code
            for i in range(40)
        ]
        assert statuses[:10] == [401] * 10
        assert set(statuses[12:]) == {429}
        limited = http.get(
            "/keepalive", params={"nodeName": "web-01"}, headers=bearer_header("x" * 43)
        )
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        admin = http.get(
            f"{server.api}/admin/bins", headers=bearer_header("wrong-admin-token-123456")
        )
        assert admin.status_code == 429

        # Enrolments share one budget per /24: `good` (127.0.0.2) took one of its ten.
        enrolments = [enrol(http, f"new-{i}", _token()).status_code for i in range(30)]
        assert enrolments[:9] == [202] * 9
        assert set(enrolments[11:]) == {429}

        # Another address, with the right credential: not slowed down.
        assert writes(good, "web-01", token) == [200, 200, 200, 200]
        assert envelope(good.get(f"{server.api}/admin/bins", headers=server.admin_headers), 200)


def test_migration_mode_lets_unenrolled_nodes_write_as_before_but_not_enrolled_ones(
    bin_manager_app_factory: BinManagerAppFactory,
) -> None:
    server = bin_manager_app_factory(node_auth="migrate")
    server.publish("app", b"app v1")
    token = _token()
    with server.client(base_url=server.api) as http:
        assert writes(http, "old-01", None) == [200, 200, 200, 200]
        pending = enrol(http, "old-02", _token())
        assert pending.status_code == 202
        assert pending.json()["data"]["legacyWrites"] is True
        assert writes(http, "old-02", None)[0] == 200
        # An existing registered node claims its name once, with the enrolment token.
        assert enrol(http, "old-01", token, server.enrolment_token).status_code == 201
        assert writes(http, "old-01", None) == [401, 401, 401, 401]
        assert writes(http, "old-01", token) == [200, 200, 200, 200]
        assert server.credential("old-02")["status"] == "none"
        assert server.credential("old-02")["pending"] is not None
