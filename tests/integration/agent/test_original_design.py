"""The agent against a bin-manager of the original design that it did not write
(tests/support/original_server.py: only the original endpoints, its own answers to every
other route): the whole wire-contract scenario works as before enrolment existed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.inspector.conftest import Host, breakable
from tests.support.agent import Agent, program
from tests.support.original_server import UNKNOWN_ROUTES, OriginalServer, serve_original
from tests.support.procs import free_port, port_open, wait_until
from tests.support.supervisor import Supervisord

NO_ENROLMENT = "the bin-manager has no enrolment"


@pytest.fixture
def original() -> Iterator[OriginalServer]:
    with serve_original() as server:
        yield server


@pytest.fixture
def host(tmp_path: Path, original: OriginalServer, supervisord: Supervisord) -> Agent:
    return Agent(tmp_path / "host", original.api, supervisord.socket_url)


def install(
    original: OriginalServer,
    supervisord: Supervisord,
    host: Agent,
    name: str,
    content: bytes,
    port: int | None = None,
) -> str:
    """Publish `content`, manage `name` and install it with one run; its sha256."""
    sha = original.publish(name, content)
    host.write_manifest(name, ports={name: port} if port else None)
    supervisord.add_program(name, host.binary(name))
    result = host.run()
    assert result.returncode == 0, host.debug(result)
    supervisord.wait_running(name)
    return sha


@pytest.mark.parametrize(
    ("unknown", "token"),
    [
        *((name, "") for name in UNKNOWN_ROUTES),
        ("404-html", "its-own-token"),  # a 401 on every route without it, /enrol included
    ],
    ids=[*UNKNOWN_ROUTES, "401-its-own-token"],
)
def test_first_run_installs_and_reports(
    tmp_path: Path, supervisord: Supervisord, unknown: str, token: str
) -> None:
    with serve_original(UNKNOWN_ROUTES[unknown], token=token) as original:
        host = Agent(tmp_path / "host", original.api, supervisord.socket_url)
        host.env["NODE_LABELS"] = "zone=a"  # an extra field the original server ignores
        if token:
            host.env["BIN_MANAGER_TOKEN"] = token
        sha = original.publish("hello", program("1"))
        host.write_manifest("hello")
        supervisord.add_program("hello", host.binary("hello"))

        first = host.run()
        assert first.returncode == 0, host.debug(first)
        assert host.installed_sha("hello") == sha
        supervisord.wait_running("hello")
        entry = host.entry("hello")
        assert (entry["version"], entry["history"]) == (sha, {sha: "ok"})
        assert original.seen.nodes["host-001"]["cpuArch"] == host.manifest()["nodeInfo"]["cpuArch"]
        assert original.progress() == [(sha, "in_progress"), (sha, "success")]
        assert original.reported() == [("hello", sha)]

        again = host.run()
        assert again.returncode == 0, host.debug(again)
        assert original.progress() == [(sha, "in_progress"), (sha, "success")]
        assert original.downloads() == original.downloads(sha)  # one, by sha256
        assert len(original.downloads()) == 1
    status = 401 if token else UNKNOWN_ROUTES[unknown].status
    lines = [line for line in host.log().splitlines() if NO_ENROLMENT in line]
    assert len(lines) == 1, host.log()  # said once, not every tick
    assert f"(POST /api/v1/enrol: HTTP {status})" in lines[0]
    assert "works as before" in lines[0]


def test_upgrade_reports_each_version(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    sha1 = install(original, supervisord, host, "hello", program("1"))
    pid1 = supervisord.pid("hello")
    sha2 = original.publish("hello", program("2"))

    result = host.run()
    assert result.returncode == 0, host.debug(result)
    assert host.installed_sha("hello") == sha2
    assert supervisord.wait_running("hello") != pid1
    entry = host.entry("hello")
    assert (entry["version"], entry["previousVersion"]) == (sha2, sha1)
    assert entry["history"] == {sha1: "ok", sha2: "ok"}
    assert entry["upgradePath"][sha2] == sha1
    assert (host.store_dir / "hello" / sha1).exists()  # kept for a rollback
    assert original.progress() == [
        (sha1, "in_progress"), (sha1, "success"), (sha2, "in_progress"), (sha2, "success")
    ]  # fmt: skip
    assert original.reported() == [("hello", sha1), ("hello", sha2)]
    assert all(p["processingTime"] >= 0 for p in original.seen.progress)


def test_version_exiting_at_once_is_rolled_back_then_known_bad(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    port = free_port()
    sha1 = install(original, supervisord, host, "web", program("1", port=port), port)
    bad = original.publish("web", program("2", mode="exit", port=port))

    result = host.run()
    assert result.returncode == 1, host.debug(result)
    assert host.installed_sha("web") == sha1
    supervisord.wait_running("web")
    assert port_open(port)
    entry = host.entry("web")
    assert (entry["version"], entry["history"][bad]) == (sha1, "err")
    assert original.progress()[-2:] == [(bad, "in_progress"), (bad, "failed")]
    assert original.seen.progress[-1]["reason"].startswith("watch: ")  # ignored by it
    assert original.reported() == [("web", sha1)]

    # Known bad: not downloaded nor installed again; said once (in the log, and to the
    # server as a refusal: test_failure_causes.py).
    downloads, reports = len(original.downloads()), len(original.seen.progress)
    for _ in range(2):
        rerun = host.run()
        assert rerun.returncode == 0, host.debug(rerun)
    assert host.log().count("known bad") == 1
    assert host.installed_sha("web") == sha1
    assert (len(original.downloads()), len(original.seen.progress)) == (downloads, reports + 1)
    assert original.progress()[-1] == (bad, "failed")


def test_corrupt_download_is_discarded_and_the_release_not_blamed(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    sha = original.publish("app", program("1"))
    host.write_manifest("app")
    supervisord.add_program("app", host.binary("app"))
    original.corrupt("app")

    result = host.run()
    assert result.returncode == 1, host.debug(result)
    assert "sha256 mismatch" in host.log()
    assert not host.binary("app").exists()
    assert list((host.store_dir / "app").iterdir()) == []  # nor a partial file
    entry = host.entry("app")
    assert (entry["version"], entry.get("history", {}).get(sha)) == ("", None)
    assert original.progress() == [(sha, "in_progress"), (sha, "failed")]
    assert original.reported() == []

    original.corrupt("app", on=False)
    fixed = host.run()
    assert fixed.returncode == 0, host.debug(fixed)
    assert host.installed_sha("app") == sha
    supervisord.wait_running("app")


def test_overlapping_runs_do_the_work_once(
    original: OriginalServer, supervisord: Supervisord, host: Agent
) -> None:
    install(original, supervisord, host, "app", program("1"))
    sha2 = original.publish("app", program("2"))

    runs = [host.spawn(), host.spawn()]
    for run in runs:
        run.communicate(timeout=120)
    assert [run.returncode for run in runs] == [0, 0], host.log()
    assert host.log().count("upgrading from") == 2  # v1 earlier, v2 once
    assert host.installed_sha("app") == sha2
    assert host.entry("app")["version"] == sha2
    assert len(original.downloads(sha2)) == 1
    assert original.progress()[2:] == [(sha2, "in_progress"), (sha2, "success")]
    assert original.reported()[1:] == [("app", sha2)]


@pytest.mark.parametrize("ranges", [False, True], ids=["no-range", "range"])
def test_killed_mid_download_the_next_tick_completes(
    tmp_path: Path, supervisord: Supervisord, ranges: bool
) -> None:
    content = program("big") + b"#" * (3 * 1024 * 1024) + b"\n"
    with serve_original(ranges=ranges) as original:
        host = Agent(tmp_path / "host", original.api, supervisord.socket_url)
        sha = original.publish("big", content)
        host.write_manifest("big")
        supervisord.add_program("big", host.binary("big"))
        half = 1024 * 1024
        original.hold_next_download(half)
        part = host.store_dir / "big" / f".{sha}.part"

        run = host.spawn()
        try:
            wait_until(lambda: original.held.is_set() or run.poll() is not None, 60, "download")
            assert original.held.is_set(), host.log()
            wait_until(lambda: part.exists() and part.stat().st_size == half, 30, "half written")
        finally:
            run.kill()  # kill -9, by its PID
            run.communicate(timeout=30)
        assert run.returncode == -9
        original.let_go.set()
        assert not host.binary("big").exists()
        assert host.leftovers() == []
        assert host.entry("big")["version"] == ""

        result = host.run()
        assert result.returncode == 0, host.debug(result)
        assert host.installed_sha("big") == sha
        supervisord.wait_running("big")
        assert not part.exists()
        first, second = original.downloads(sha)
        assert (first.range, first.status) == ("", 200)
        if ranges:  # resumed where the killed run stopped
            assert (second.range, second.status) == (f"bytes={half}-", 206)
        else:  # an original server ignores Range: downloaded afresh, still verified
            assert (second.range, second.status) == ("", 200)
        assert original.progress()[-2:] == [(sha, "in_progress"), (sha, "success")]
        assert original.reported() == [("big", sha)]


def test_inspector_rolls_back_and_reports_to_it(
    tmp_path: Path, original: OriginalServer, supervisord: Supervisord
) -> None:
    host = Host(tmp_path / "checked", original.api, supervisord.socket_url)
    sha1 = install(original, supervisord, host, "hello", breakable(host, "1"))
    sha2 = original.publish("hello", breakable(host, "2"))
    assert host.run().returncode == 0, host.log()
    supervisord.wait_running("hello")
    host.flag("2", "fatal")
    wait_until(lambda: supervisord.state("hello") == "FATAL", 30, "hello FATAL")

    code, answer = host.check()
    row = host.service(answer, "hello")
    assert (code, row["action"], row["rollbackTo"]) == (1, "rolled-back", sha1), answer
    assert host.installed_sha("hello") == sha1
    supervisord.wait_running("hello")
    assert host.entry("hello")["history"] == {sha1: "ok", sha2: "err"}
    assert original.progress()[-1] == (sha2, "failed")
    assert original.seen.progress[-1]["reason"].startswith("inspector: ")
    assert original.reported()[-1] == ("hello", sha1)
    assert "rollback reported to the bin-manager" in host.log()


def test_trusted_keys_refuse_what_it_cannot_sign(tmp_path: Path, supervisord: Supervisord) -> None:
    """With TRUSTED_KEYS, a server without signatures (its 405 for the route) gets a clear
    refusal: nothing installed, `failed` reported with the reason."""
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
        host.write_manifest("hello")
        supervisord.add_program("hello", host.binary("hello"))

        result = host.run()
        assert result.returncode == 1, host.debug(result)
        assert "not signed: the bin-manager has no signature for this release" in host.log()
        assert not host.binary("hello").exists()
        assert original.downloads() == []  # refused before anything touched the disk
        assert original.progress() == [(sha, "in_progress"), (sha, "failed")]
        assert original.seen.progress[-1]["reason"].startswith("signature: not signed")
