"""A node's credential is cached for minutes by each server process (so that the fast
path checks it from memory): a revocation through one server must still be refused by
another sharing its database, without a restart (docs/security.md, "Credentials")."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.server.test_node_credentials import _token
from tests.support.answers import bearer_header, enrol
from tests.support.procs import wait_until
from tests.support.server import BinManagerFactory


def test_a_node_revoked_through_one_server_is_refused_by_another_sharing_its_database(
    bin_manager_factory: BinManagerFactory, tmp_path: Path
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'shared.sqlite3'}"
    one = bin_manager_factory(database_url=url, node_auth="required")
    two = bin_manager_factory(database_url=url, node_auth="required")
    token = _token()
    with httpx.Client(base_url=one.api, timeout=30) as http:
        assert enrol(http, "web-01", token, one.enrolment_token).status_code == 201

    with httpx.Client(base_url=two.api, timeout=30, headers=bearer_header(token)) as http:

        def keepalive() -> int:
            return http.get("/keepalive", params={"nodeName": "web-01"}).status_code

        assert [keepalive() for _ in range(3)] == [200, 200, 200]  # cached by the second
        revoked = one.cli("nodes", "revoke", "web-01")
        assert revoked.returncode == 0, revoked.stderr
        wait_until(lambda: keepalive() == 401, 30, "the other server to refuse the revoked node")
        answer = http.get("/keepalive", params={"nodeName": "web-01"})
        assert "revoked" in answer.json()["message"]
    assert token not in one.service.log() + two.service.log()
