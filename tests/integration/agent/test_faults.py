"""A faulty API or download changes nothing on the host; downloads resume and verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.agent import Agent, program, sha256
from tests.support.loopback import Exchange, Handle, Loopback, answer, late, ranged, trickle
from tests.support.procs import LOOPBACK, free_port
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

JSON = "application/json"
SUCCESS = b'{"code":0,"message":"success","data":{}}'


def _installed_host(tmp_path: Path, api: str) -> tuple[Agent, dict[str, object]]:
    """A host with one installed binary and a filled manifest; returns its files' bytes."""
    host = Agent(tmp_path / "host", api, f"unix://{tmp_path}/no-supervisor.sock")
    content = program("1")
    host.binary("app").write_bytes(content)
    host.write_manifest("app")
    doc = host.manifest()
    doc["binaries"][0]["version"] = sha256(content)
    host.manifest_path.write_text(json.dumps(doc, indent=2))
    return host, snapshot(host)


def snapshot(host: Agent) -> dict[str, object]:
    """What a failed tick must not change: binaries, stored versions, manifest entries."""
    files = {
        str(p): p.read_bytes()
        for d in (host.bin_dir, host.store_dir)
        if d.exists()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name not in (".state.json", ".last-tick.json")  # how it ended
    }
    return {"files": files, "binaries": host.manifest()["binaries"]}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(answer(500, b'{"code":500,"message":"boom"}', JSON), id="http-500"),
        pytest.param(answer(200, b"<html>not json{", JSON), id="garbage"),
        pytest.param(answer(200, b'{"code":0,"data":{"sha256":"nope"}}', JSON), id="bad-sha"),
        pytest.param(
            answer(200, b'{"code":0,"data":{"sha256":"' + b"a" * 64 + b'\\n"}}', JSON),
            id="sha-with-newline",
        ),
        pytest.param(late(6, answer(200, SUCCESS, JSON)), id="too-slow"),
    ],
)
def test_faulty_api_changes_nothing_and_exits_75(tmp_path: Path, fault: Handle) -> None:
    with Loopback(fault, keep_alive=False) as server:
        host, before = _installed_host(tmp_path, f"{server.url}/api/v1")
        result = host.run(HTTP_TIMEOUT="2")
    assert result.returncode == 75, host.debug(result)
    assert snapshot(host) == before
    assert "API" in host.log()


def test_api_down_changes_nothing_and_exits_75(tmp_path: Path) -> None:
    host, before = _installed_host(tmp_path, f"http://{LOOPBACK}:{free_port()}/api/v1")
    result = host.run()
    assert result.returncode == 75, host.debug(result)
    assert result.stderr == ""  # cron must not mail every minute while the API is down
    assert snapshot(host) == before
    assert "unreachable" in host.log()


def test_hash_mismatch_discards_the_download(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    evil_binary = answer(200, program("evil"), "application/octet-stream")
    with Loopback(evil_binary, keep_alive=False) as evil:
        result = agent.run(DOWNLOAD_BASE_URL=f"{evil.url}/download")
    assert result.returncode == 1, agent.debug(result)
    assert "sha256 mismatch" in agent.log()
    assert not agent.binary("app").exists()
    assert list((agent.store_dir / "app").iterdir()) == []
    assert agent.entry("app")["version"] == ""
    assert sha not in agent.entry("app").get("history", {})  # the release is not blamed


def test_truncated_download_is_resumed(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    # Big enough that whole 1 MiB chunks reach the disk before the cut.
    content = program("big") + b"#" * (3 * 1024 * 1024) + b"\n"
    sha = bin_manager.publish("big", content)
    assert sha == hashlib.sha256(content).hexdigest()
    agent.write_manifest("big")
    supervisord.add_program("big", agent.binary("big"))
    with Loopback(ranged(content, '"etag-1"', cut_first_at=2_600_000), keep_alive=False) as flaky:
        result = agent.run(DOWNLOAD_BASE_URL=f"{flaky.url}/download")
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("big") == sha
    ranges = [r.headers.get("Range", "") for r in flaky.seen]
    assert ranges[0] == ""
    assert ranges[1].startswith("bytes=")
    assert ranges[1] != "bytes=0-"
    assert flaky.seen[1].headers["If-Range"] == '"etag-1"'
    assert "resuming" in agent.log()
    supervisord.wait_running("big")


def test_fallback_download_when_download_base_url_has_nothing(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    nothing = answer(404, b'{"code":404,"message":"no"}', "application/json")
    with Loopback(nothing, keep_alive=False) as empty:
        result = agent.run(DOWNLOAD_BASE_URL=f"{empty.url}/download")
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha
    assert "trying the latest release" in agent.log()


def test_redirect_to_another_host_is_refused(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    elsewhere = f"http://{LOOPBACK}:{free_port()}/steal"

    def redirect(req: Exchange) -> None:
        req.send_response(302)
        req.send_header("Location", elsewhere)
        req.send_header("Content-Length", "0")
        req.end_headers()

    with Loopback(redirect, keep_alive=False) as bouncer:
        result = agent.run(DOWNLOAD_BASE_URL=f"{bouncer.url}/download")
    assert result.returncode == 75, agent.debug(result)
    assert f"refused a redirect to {elsewhere}: not the scheme, host and port" in agent.log()
    assert not agent.binary("app").exists()


def test_long_download_reports_in_progress_every_5_seconds(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    content = program("slow") + b"#" * 400_000 + b"\n"
    sha = bin_manager.publish("slow", content)
    agent.write_manifest("slow")
    supervisord.add_program("slow", agent.binary("slow"))
    with Loopback(trickle(content, 16, 0.5), keep_alive=False) as link:  # about 8 s
        result = agent.run(DOWNLOAD_BASE_URL=f"{link.url}/download")
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("slow") == sha
    progress = bin_manager.admin_get("/nodes/host-001").json()["data"]["progress"]
    statuses = [p["status"] for p in reversed(progress)]
    assert statuses[0] == "in_progress"
    assert statuses.count("in_progress") >= 2  # at the start, then again after 5 s
    assert statuses[-1] == "success"
    times = [p["processingTime"] for p in reversed(progress)]
    assert times == sorted(times)
    assert times[-1] >= 5  # counted from the lock's timestamp
