"""Node credentials against a real server (issue 14): enrolment, approval and revocation
from the CLI, and a proxy scoped to its nodes (docs/security.md). The routes' own rules
(forged writes, throttling, migration mode): tests/routes/test_node_credentials.py."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.server.test_cli import cli
from tests.support.answers import bearer_header, enrol, node_info, writes
from tests.support.server import BinManager, BinManagerFactory


def _token() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def required(bin_manager_factory: BinManagerFactory) -> BinManager:
    server = bin_manager_factory(node_auth="required")
    server.publish("app", b"app v1")
    return server


def test_pending_enrolment_is_approved_from_the_cli_with_its_fingerprint(
    required: BinManager,
) -> None:
    token = _token()
    with required.client(base_url=required.api) as http:
        pending = enrol(http, "edge-01", token)
        assert pending.status_code == 202
        fingerprint = pending.json()["data"]["fingerprint"]
        assert pending.json()["data"]["status"] == "pending"
        assert writes(http, "edge-01", token)[0] == 401  # not yet

        listed = cli(required, "nodes", "list", "--pending")
        assert listed.returncode == 0, listed.stderr
        assert "edge-01" in listed.stdout
        assert fingerprint in listed.stdout
        refused = cli(required, "nodes", "approve", "edge-01", "--fingerprint", "0" * 12)
        assert refused.returncode == 2
        assert fingerprint in refused.stderr
        approved = cli(required, "nodes", "approve", "edge-01", "--fingerprint", fingerprint)
        assert approved.returncode == 0, approved.stderr

        assert writes(http, "edge-01", token) == [200, 200, 200, 200]
        assert required.credential("edge-01")["status"] == "enrolled"
        assert required.credential("edge-01")["fingerprint"] == fingerprint
        assert "edge-01" not in cli(required, "nodes", "list", "--pending").stdout


def test_a_revoked_node_is_refused_and_comes_back_only_by_approval(required: BinManager) -> None:
    token = _token()
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", token, required.enrolment_token).status_code == 201
        revoked = cli(required, "nodes", "revoke", "web-01")
        assert revoked.returncode == 0, revoked.stderr
        answer = http.post("/keepalive", json=node_info("web-01"), headers=bearer_header(token))
        assert answer.status_code == 401
        assert "revoked" in answer.json()["message"]
        # A stolen enrolment token does not undo a revocation.
        again = enrol(http, "web-01", _token(), required.enrolment_token)
        assert again.status_code == 202
        assert required.credential("web-01")["status"] == "revoked"
        assert cli(required, "nodes", "approve", "web-01").returncode == 0
        assert required.credential("web-01")["status"] == "enrolled"
        assert writes(http, "web-01", token)[0] == 401  # the old token stays dead


def test_a_proxy_speaks_only_for_the_nodes_it_enrolled(required: BinManager) -> None:
    created = cli(required, "proxies", "create", "cluster-a")
    assert created.returncode == 0, created.stderr
    proxy = created.stdout.strip()
    other = required.create_proxy("cluster-b")
    node_token = _token()
    with required.client(base_url=required.api) as http:
        assert enrol(http, "web-01", node_token, required.enrolment_token).status_code == 201
        # Its inventory's nodes: enrolled as its own by its first keepalive.
        assert writes(http, "c-01", proxy) == [200, 200, 200, 200]
        assert required.credential("c-01")["proxy"] == "cluster-a"
        assert writes(http, "web-01", proxy) == [403, 403, 403, 403]
        assert writes(http, "c-01", other) == [403, 403, 403, 403]
        assert writes(http, "c-01", node_token) == [403, 403, 403, 403]
        assert cli(required, "proxies", "revoke", "cluster-a").returncode == 0
        assert writes(http, "c-01", proxy) == [401, 401, 401, 401]
