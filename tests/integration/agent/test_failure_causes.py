"""Whose failure each `failed` report tells (its `cause`, client/causes.py): the release's,
the host's, or a refusal. Sent by a real agent to a server of the original design that
records every body (tests/support/original_server.py), which ignores the field as such a
server does; only "release" may count against a release.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent.test_signed_releases import signing_host
from tests.support.agent import Agent, program
from tests.support.original_server import UNKNOWN_ROUTES, OriginalServer, serve_original
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

NO_KEYGEN = "TRUSTED_KEYS needs ssh-keygen (openssh-client) on PATH"


@pytest.fixture
def original() -> Iterator[OriginalServer]:
    with serve_original() as server:
        yield server


@pytest.fixture
def host(tmp_path: Path, original: OriginalServer, supervisord: Supervisord) -> Agent:
    return Agent(tmp_path / "host", original.api, supervisord.socket_url)


def failed(original: OriginalServer) -> list[dict[str, Any]]:
    """The bodies of every `failed` report, oldest first, as the agent sent them."""
    with original.lock:
        return [dict(p) for p in original.seen.progress if p["status"] == "failed"]


def manage(supervisord: Supervisord, host: Agent, name: str) -> None:
    host.write_manifest(name)
    supervisord.add_program(name, host.binary(name))


def test_a_stalled_download_is_the_host_s_failure(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    sha = original.publish("big", program("1") + b"#" * 200_000 + b"\n")
    manage(supervisord, host, "big")
    original.hold_next_download(1000)  # then nothing more: a dead link

    stalled = host.run(DOWNLOAD_STALL_TIMEOUT="2")
    original.let_go.set()
    assert stalled.returncode == 75, host.debug(stalled)
    (report,) = failed(original)
    assert (report["targetHash"], report["cause"]) == (sha, "host")
    assert "stalled" in report["reason"]
    assert host.entry("big").get("history", {}).get(sha) is None  # not held against it

    fixed = host.run()
    assert fixed.returncode == 0, host.debug(fixed)
    assert host.installed_sha("big") == sha


def test_a_release_that_does_not_stay_up_is_the_release_s_then_refused_once(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    good = original.publish("web", program("1"))
    manage(supervisord, host, "web")
    assert host.run().returncode == 0, host.log()
    bad = original.publish("web", program("2", mode="exit"))

    result = host.run()
    assert result.returncode == 1, host.debug(result)
    assert host.installed_sha("web") == good
    (report,) = failed(original)
    assert (report["targetHash"], report["cause"]) == (bad, "release")
    assert report["reason"].startswith("watch: ")

    # Held as bad from now on: the server hears once that this host refuses it, and why.
    for _ in range(2):
        again = host.run()
        assert again.returncode == 0, host.debug(again)
    assert len(failed(original)) == 2
    refusal = failed(original)[-1]
    assert (refusal["targetHash"], refusal["cause"]) == (bad, "refused")
    assert f"ansible-proxy forget web {bad[:12]}" in refusal["reason"]
    assert host.log().count("known bad") == 1


def test_a_release_refused_for_want_of_a_signature_is_a_refusal(
    tmp_path: Path, supervisord: Supervisord
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    made = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(keys / "alice")],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    public = (keys / "alice.pub").read_text().split()
    (keys / "trusted").write_text(f"alice {public[0]} {public[1]}\n")
    with serve_original(UNKNOWN_ROUTES["405-plain"]) as original:
        host = Agent(tmp_path / "host", original.api, supervisord.socket_url)
        host.env["TRUSTED_KEYS"] = str(keys / "trusted")
        sha = original.publish("hello", program("1"))
        manage(supervisord, host, "hello")

        result = host.run()
        assert result.returncode == 1, host.debug(result)
        (report,) = failed(original)
    assert (report["targetHash"], report["cause"]) == (sha, "refused")
    assert report["reason"].startswith("signature: not signed")


def test_a_hold_and_its_release_are_told_in_the_keepalive(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    original.publish("web", program("1"))
    manage(supervisord, host, "web")
    assert host.run().returncode == 0, host.log()
    posts = len(original.seen.keepalives)

    held = host.run("web", "--reason", "disk swap, ticket 4711", command="hold")
    assert held.returncode == 0, held.stderr
    assert host.run().returncode == 0, host.log()
    assert len(original.seen.keepalives) == posts + 1  # a hold is a change of the node's
    body = original.seen.keepalives[-1]
    assert body["held"] == {"web": "disk swap, ticket 4711"}
    assert body["nodeName"] == "host-001"

    assert host.run().returncode == 0, host.log()  # nothing changed: nothing posted
    assert len(original.seen.keepalives) == posts + 1

    assert host.run("web", command="release").returncode == 0
    assert host.run().returncode == 0, host.log()
    assert len(original.seen.keepalives) == posts + 2
    assert "held" not in original.seen.keepalives[-1]  # absent: nothing held


def test_without_ssh_keygen_the_agent_stops_at_start_and_tries_no_release(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    """TRUSTED_KEYS on a host without ssh-keygen is this host's configuration error: one
    line, exit 2, before any release is tried, so no release hears of it as a failure."""
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    publishers.publish("hello", program("1"), alice)
    empty = tmp_path / "path"
    empty.mkdir()
    agent.env["PATH"] = str(empty)  # openssh-client not installed

    for command in ("run", "self-test"):  # a self-update's self-test says the same
        result = agent.run(command=command)
        assert result.returncode == 2, agent.debug(result)
        assert result.stderr.splitlines() == [f"ansible-proxy: {NO_KEYGEN}"], result.stderr
    assert not agent.binary("hello").exists()
    assert bin_manager.admin_get("/nodes/host-001").status_code == 404  # nothing told at all
    assert NO_KEYGEN in agent.log()

    agent.env["PATH"] = "/usr/bin:/bin"  # installed
    installed = agent.run()
    assert installed.returncode == 0, agent.debug(installed)
    assert agent.installed_sha("hello") is not None


def test_a_damaged_trust_record_is_said_and_installs_nothing(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    """Read as empty, STORE_DIR/<bin>/.trust would let an older signed release back in."""
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    sha1 = publishers.publish("hello", program("1"), alice)
    assert agent.run().returncode == 0, agent.log()
    trust = agent.store_dir / "hello" / ".trust"
    trust.write_text('{"sequence": 1, "verif')  # cut short: a disk fault, a hand edit
    sha2 = publishers.publish("hello", program("2"), alice)

    result = agent.run()
    assert result.returncode == 2, agent.debug(result)
    damaged = f"{trust}: this host's record of the releases it verified is damaged (not JSON)"
    assert damaged in result.stderr
    assert damaged in agent.log()
    assert agent.installed_sha("hello") == sha1

    trust.rename(trust.with_name(".trust.damaged"))  # as the line says: moved aside
    fixed = agent.run()
    assert fixed.returncode == 0, agent.debug(fixed)
    assert agent.installed_sha("hello") == sha2


def test_a_release_signed_by_a_key_this_host_does_not_trust_is_a_refusal(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    """What this project's bin-manager stores of the report: a refusal, not the release
    failing (so a staged rollout does not mark it bad for it)."""
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    mallory = publishers.key("mallory")  # a publisher's key this host never trusted
    sha = publishers.publish("hello", program("1"), mallory)

    result = agent.run()
    assert result.returncode == 1, agent.debug(result)
    assert not agent.binary("hello").exists()
    report = bin_manager.admin_get("/nodes/host-001").json()["data"]["progress"][0]
    assert (report["targetHash"], report["status"], report["cause"]) == (sha, "failed", "refused")
    assert report["reason"].startswith("signature: 0 of the 1 trusted signatures needed")

    signed = bin_manager.cli("sign", "hello", sha, "--sign-key", str(alice))
    assert signed.returncode == 0, signed.stderr
    assert agent.run().returncode == 0, agent.log()
    assert agent.installed_sha("hello") == sha
