"""Attacks on enrolment against a real server (issue 25.5 and 25.7): squatting on the agent
token in migrate mode, a flood of pending requests, concurrent enrolments of one name
(SQLite and PostgreSQL), and enumerating names through the answers."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from typing import Any

import httpx
import pytest

from tests.integration.server.test_cli import cli
from tests.support.answers import bearer_header, enrol, envelope, node_info, writes
from tests.support.server import BinManager, BinManagerFactory


def _token() -> str:
    return secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sql(server: BinManager, statement: str, *values: object) -> list[Any]:
    """A statement on the server's SQLite database (the test's view, as an older server
    would have left it)."""
    with sqlite3.connect(server.data_dir / "bin-manager.sqlite3") as db:
        return db.execute(statement, values).fetchall()


# -- issue 25.5: one host squatting on the agent token in migrate mode ---------------


def test_no_node_may_take_a_servers_token_and_legacy_nodes_keep_writing(
    bin_manager_factory: BinManagerFactory,
) -> None:
    agent, metrics = _token(), _token()
    server = bin_manager_factory(
        node_auth="migrate",
        agent_token=agent,
        extra_env={"BIN_MANAGER_METRICS_TOKEN": metrics},
    )
    server.publish("app", b"app v1")
    assert server.enrolment_token is not None
    with server.client(base_url=server.api) as http:
        assert writes(http, "legacy-01", agent) == [200, 200, 200, 200]
        # The attack: the agent token (every host has it) as a node token, enrolled.
        for taken in (agent, server.admin_token, server.enrolment_token, metrics):
            for bearer in (server.enrolment_token, None):
                refused = enrol(http, "squatter", taken, bearer)
                assert refused.status_code == 400, refused.text
                assert "one of the bin-manager's own tokens" in refused.json()["message"]
        assert server.credential("squatter")["status"] == "none"
        assert server.credential("squatter")["pending"] is None
        assert writes(http, "legacy-01", agent) == [200, 200, 200, 200]

    # A squatter an older server enrolled (or queued for approval) before this check.
    server.stop()
    now = "2026-01-01 00:00:00"
    _sql(server, "INSERT INTO node_credentials (node_name, token_hash, revoked, changed_at) "
         "VALUES ('squatter', ?, 0, ?)", _hash(agent), now)  # fmt: skip
    _sql(server, "INSERT INTO node_credentials (node_name, revoked, pending_hash, pending_at, "
         "changed_at) VALUES ('queued', 0, ?, ?, ?)", _hash(agent),
         time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), now)  # fmt: skip
    server.start()
    with server.client(base_url=server.api) as http:
        # The legacy rule comes first: the agent token still writes for legacy nodes.
        assert writes(http, "legacy-01", agent) == [200, 200, 200, 200]
        assert writes(http, "legacy-02", agent) == [200, 200, 200, 200]
    approved = cli(server, "nodes", "approve", "queued")
    assert approved.returncode == 2
    assert "one of the bin-manager's own tokens" in approved.stderr
    assert server.credential("queued")["status"] == "none"


# -- issue 25.7: the pending-approval queue -------------------------------------------


def test_a_flood_of_pending_enrolments_leaves_room_and_is_rejected_in_one_command(
    bin_manager_factory: BinManagerFactory,
) -> None:
    server = bin_manager_factory(node_auth="required")
    server.publish("app", b"app v1")
    accepted = 0
    # The attack round's flood: 40 addresses of one network, 30 requests each.
    for host in range(1, 41):
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{host}")
        with server.client(base_url=server.api, transport=transport) as http:
            for n in range(30):
                answer = enrol(http, f"junk-{host}-{n}", _token())
                assert answer.status_code in (202, 429), answer.text
                accepted += answer.status_code == 202
    assert accepted < 60  # one budget for the network: 30, and one every 2 s after
    # A real host elsewhere is not locked out.
    elsewhere = httpx.HTTPTransport(local_address="127.0.1.1")
    with server.client(base_url=server.api, transport=elsewhere) as http:
        real = enrol(http, "real-01", _token())
        assert real.status_code == 202, real.text
        owner = _token()
        assert enrol(http, "web-01", owner, server.enrolment_token).status_code == 201
        assert enrol(http, "web-01", _token()).status_code == 202  # a request for it too

    listed = cli(server, "nodes", "list", "--pending")
    assert listed.stdout.startswith("NODE ")
    assert len(listed.stdout.splitlines()) == 1 + accepted + 2  # the header, a row each
    assert "web-01" in listed.stdout
    assert "enrolled: approving replaces its credential" in listed.stdout
    assert cli(server, "nodes", "reject", "--older-than", "1h").stdout.strip() == (
        "rejected 0 pending enrolment(s)"
    )
    one = cli(server, "nodes", "reject", "real-01")
    assert one.stdout.strip() == "rejected 1 pending enrolment(s)", one.stderr
    every = cli(server, "nodes", "reject", "--all-pending")
    assert every.returncode == 0, every.stderr
    assert every.stdout.strip() == f"rejected {accepted + 1} pending enrolment(s)"
    assert "no enrolment is waiting" in cli(server, "nodes", "list", "--pending").stdout
    # Nothing of them is left: no row per junk name, as revoking each one left.
    assert _sql(server, "SELECT node_name FROM node_credentials") == [("web-01",)]
    assert server.credential("web-01")["status"] == "enrolled"
    with server.client(base_url=server.api) as http:
        assert writes(http, "web-01", owner) == [200, 200, 200, 200]
    usage = cli(server, "nodes", "reject", "--all-pending", "real-01")
    assert usage.returncode == 2
    assert "name nodes, or give --all-pending or --older-than" in usage.stderr


def test_a_pending_enrolment_expires(bin_manager_factory: BinManagerFactory) -> None:
    hours = 2 / 3600  # two seconds
    server = bin_manager_factory(
        node_auth="required", extra_env={"BIN_MANAGER_PENDING_ENROLMENT_HOURS": str(hours)}
    )
    with server.client(base_url=server.api) as http:
        assert enrol(http, "old-01", _token()).status_code == 202
        assert "old-01" in cli(server, "nodes", "list", "--pending").stdout
        time.sleep(3)  # past the expiry
        assert "no enrolment is waiting" in cli(server, "nodes", "list", "--pending").stdout
        expired = cli(server, "nodes", "approve", "old-01")
        assert expired.returncode == 2
        assert "expired (BIN_MANAGER_PENDING_ENROLMENT_HOURS)" in expired.stderr
        assert server.credential("old-01")["status"] == "none"
        assert enrol(http, "new-01", _token()).status_code == 202  # drops the expired ones
    assert _sql(server, "SELECT node_name FROM node_credentials") == [("new-01",)]


# -- issue 25.7: concurrent enrolments of one name -----------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("before", ["free", "registered before credentials, and pending"])
def test_concurrent_enrolments_of_one_name_bind_exactly_one(
    bin_manager_factory: BinManagerFactory,
    request: pytest.FixtureRequest,
    database: str,
    before: str,
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    # Migrate mode: a fleet moving to credentials, whose nodes claim their names at once.
    server = bin_manager_factory(node_auth="migrate", database_url=url)
    server.publish("app", b"app v1")
    tokens = [_token() for _ in range(12)]
    answers: dict[str, int] = {}
    start = threading.Barrier(len(tokens))
    with server.client(base_url=server.api) as http:
        if before != "free":
            assert http.post("/keepalive", json=node_info("race-01")).status_code == 200
            assert enrol(http, "race-01", _token()).status_code == 202

        def race(token: str) -> None:
            with server.client(base_url=server.api) as own:
                own.get(f"{server.url}/healthz")  # connected: the requests leave together
                start.wait()
                answers[token] = enrol(own, "race-01", token, server.enrolment_token).status_code

        threads = [threading.Thread(target=race, args=(token,)) for token in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(answers.values()) == [201] + [409] * 11
        winner = next(token for token, status in answers.items() if status == 201)
        assert writes(http, "race-01", winner) == [200, 200, 200, 200]
        for token in tokens:  # one write each: the losers' tokens are no credential
            if token != winner:
                lost = http.post(
                    "/keepalive", json=node_info("race-01"), headers=bearer_header(token)
                )
                assert lost.status_code == 401
    assert server.credential("race-01")["fingerprint"] == _hash(winner)[:12]


# -- issue 25.7: names cannot be enumerated ------------------------------------------


def _answer(response: httpx.Response, name: str) -> tuple[int, str]:
    """Status and body, with the name asked about taken out."""
    return response.status_code, response.text.replace(name, "NAME")


def test_a_stranger_gets_the_same_answers_about_enrolled_revoked_and_free_names(
    bin_manager_factory: BinManagerFactory,
) -> None:
    server = bin_manager_factory(node_auth="required")
    own = {"enrolled-01": _token(), "revoked-01": _token(), "other-01": _token()}
    with server.client(base_url=server.api) as http:
        for name, token in own.items():
            assert enrol(http, name, token, server.enrolment_token).status_code == 201
        assert enrol(http, "pending-01", _token()).status_code == 202
    assert cli(server, "nodes", "revoke", "revoked-01").returncode == 0

    names = ["enrolled-01", "revoked-01", "pending-01", "free-01"]
    strangers = {
        "no credential": None,
        "a wrong token": _token(),
        "another node's credential": own["other-01"],
    }
    asked = _token()  # the node token a stranger's enrolment request shows
    with server.client(base_url=server.api) as http:
        for stranger, bearer in strangers.items():
            seen: dict[str, list[tuple[int, str]]] = {}
            headers = bearer_header(bearer)
            for name in names:
                status = http.get("/keepalive", params={"nodeName": name}, headers=headers)
                register = http.post("/keepalive", json=node_info(name), headers=headers)
                seen[name] = [_answer(status, name), _answer(register, name)]
                if bearer != strangers["a wrong token"]:  # a wrong one is refused as such
                    seen[name].append(_answer(enrol(http, name, asked, bearer), name))
            assert len({repr(answers) for answers in seen.values()}) == 1, (stranger, seen)
            assert "revoked" not in repr(list(seen.values()))

        # Those entitled to know still are: the node itself, and the revoked token's holder.
        own_answer = http.get(
            "/keepalive",
            params={"nodeName": "enrolled-01"},
            headers=bearer_header(own["enrolled-01"]),
        )
        assert envelope(own_answer, 200)["data"]["status"] == "active"
        revoked = http.post(
            "/keepalive", json=node_info("revoked-01"), headers=bearer_header(own["revoked-01"])
        )
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["message"]
        # The enrolment token's holder, who may bind any free name, learns a name is bound.
        bound = enrol(http, "enrolled-01", _token(), server.enrolment_token)
        assert bound.status_code == 409
