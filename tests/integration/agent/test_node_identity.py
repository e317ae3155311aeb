"""The agent's own credential against a real server (issue 14): enrolment on the first
tick, waiting for approval, revocation, and the paused-bin downgrade made impossible."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from tests.integration.server.test_cli import cli
from tests.support.agent import Agent, program
from tests.support.server import BinManager, BinManagerFactory
from tests.support.supervisor import Supervisord


def _agent(
    tmp_path: Path, server: BinManager, supervisord: Supervisord, token: str | None
) -> Agent:
    return Agent(tmp_path / "host", server.api, supervisord.socket_url, token)


def test_the_agent_enrols_on_its_first_tick_and_then_sends_its_own_token(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, supervisord: Supervisord
) -> None:
    server = bin_manager_factory(node_auth="required")
    agent = _agent(tmp_path, server, supervisord, server.enrolment_token)
    sha1 = server.publish("hello", program("1"))
    agent.write_manifest("hello")
    supervisord.add_program("hello", agent.binary("hello"))

    first = agent.run()
    assert first.returncode == 0, agent.debug(first)
    assert agent.installed_sha("hello") == sha1
    token = agent.node_token_file.read_text().strip()
    assert stat.S_IMODE(agent.node_token_file.stat().st_mode) == 0o600
    credential = server.credential("host-001")
    assert credential["status"] == "enrolled"
    assert f"fingerprint {credential['fingerprint']}" in agent.log()
    assert token not in agent.log()  # only ever its fingerprint
    assert server.admin_get("/nodes/host-001").json()["data"]["progress"][0]["status"] == "success"

    # Later ticks need no enrolment token: the node's own token is its credential.
    del agent.env["ENROLMENT_TOKEN"]
    second = agent.run()
    assert second.returncode == 0, agent.debug(second)
    assert agent.node_token_file.read_text().strip() == token


def test_without_the_enrolment_token_the_agent_waits_for_approval_then_works(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, supervisord: Supervisord
) -> None:
    server = bin_manager_factory(node_auth="required")
    agent = _agent(tmp_path, server, supervisord, None)
    sha1 = server.publish("hello", program("1"))
    agent.write_manifest("hello")
    supervisord.add_program("hello", agent.binary("hello"))

    waiting = agent.run()
    assert waiting.returncode == 75, agent.debug(waiting)
    fingerprint = server.credential("host-001")["pending"]["fingerprint"]
    line = (
        f"waiting for approval on the bin-manager (fingerprint {fingerprint}): "
        f"bin-manager nodes approve host-001"
    )
    assert line in agent.log()
    assert agent.installed_sha("hello") is None  # nothing else done

    approved = cli(server, "nodes", "approve", "host-001", "--fingerprint", fingerprint)
    assert approved.returncode == 0, approved.stderr
    done = agent.run()
    assert done.returncode == 0, agent.debug(done)
    assert agent.installed_sha("hello") == sha1

    assert cli(server, "nodes", "revoke", "host-001").returncode == 0
    revoked = agent.run()
    assert revoked.returncode == 2, agent.debug(revoked)
    assert "revoked" in revoked.stderr
    # …and it says how to ask again: the file to remove, then an admin's approval
    assert f"remove NODE_TOKEN_FILE {agent.node_token_file}" in revoked.stderr
    assert "bin-manager nodes approve host-001" in revoked.stderr


def test_a_forged_report_while_paused_cannot_downgrade_the_node(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, supervisord: Supervisord
) -> None:
    server = bin_manager_factory(node_auth="required")
    agent = _agent(tmp_path, server, supervisord, server.enrolment_token)
    old = server.publish("svc", program("1"))
    agent.write_manifest("svc")
    supervisord.add_program("svc", agent.binary("svc"))
    assert agent.run().returncode == 0
    new = server.publish("svc", program("2"))
    assert agent.run().returncode == 0
    assert agent.installed_sha("svc") == new
    server.pause("svc")

    # The attack of issue 14: an anonymous report of an older release for the victim.
    with server.client(base_url=server.api) as http:
        forged = {"nodeName": "host-001", "binName": "svc", "sha256": old}
        assert http.post("/bins/svc", json=forged).status_code == 401

    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("svc") == new


def test_a_paused_answer_is_only_ever_a_published_release_of_that_bin_and_arch(
    bin_manager_factory: BinManagerFactory,
) -> None:
    # Migration mode: an unenrolled node may still report as before; what it reports
    # must still never become what it is told.
    server = bin_manager_factory(node_auth="migrate")
    frozen = server.publish("svc", b"svc x86 v1")
    arm = server.publish("svc", b"svc arm v1", arch="aarch64")
    other_bin = server.publish("other", b"other v1")
    server.pause("svc")
    node = {"cpuArch": "x86_64", "osRelease": "Debian 12", "nodeName": "n-01",
            "binProxyVersion": "1"}  # fmt: skip
    with server.client(base_url=server.api) as http:
        assert http.post("/keepalive", json=node).status_code == 200
        for reported in ("d" * 64, arm, other_bin):
            report = {"nodeName": "n-01", "binName": "svc", "sha256": reported}
            assert http.post("/bins/svc", json=report).status_code == 200
            params = {"nodeName": "n-01", "arch": "x86_64"}
            answer = http.get("/bins/svc", params=params).json()["data"]["sha256"]
            batch = http.get("/bins", params=params).json()["data"]["bins"]["svc"]
            assert (answer, batch) == (frozen, frozen), reported
            download = http.get("/download/svc", params=params)
            assert download.status_code == 200
            assert download.content == b"svc x86 v1"


def test_nothing_anonymous_reaches_an_enrolled_node_through_get_keepalive(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, supervisord: Supervisord
) -> None:
    """A dead node cannot be kept looking alive by someone else's keepalives."""
    server = bin_manager_factory(node_auth="required")
    agent = _agent(tmp_path, server, supervisord, server.enrolment_token)
    agent.write_manifest()
    assert agent.run().returncode == 0
    seen = server.admin_get("/nodes/host-001").json()["data"]["lastSeen"]
    with httpx.Client(base_url=server.api) as http:
        for _ in range(3):
            answer = http.get("/keepalive", params={"nodeName": "host-001"})
            assert answer.status_code == 401
    assert server.admin_get("/nodes/host-001").json()["data"]["lastSeen"] == seen
