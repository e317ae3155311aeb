"""Deadlines of `ansible-proxy run`: a peer that answers a byte at a time, a stalled
download or a hung supervisord ends the tick (exit 75) within its timeout, with nothing
replaced, instead of holding it for minutes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.agent import Agent, program, sha256
from tests.support.loopback import Loopback, drip
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

HANG = 30  # seconds: a tick still running by then hangs as before the deadlines; killed
SLACK = 4  # seconds allowed past a deadline: start-up, the other calls, a busy machine


def _files(host: Agent) -> dict[str, bytes]:
    """Every file of the host but the log, the node's token and the last tick's record
    (`status` shows how it ended): what a failed tick must leave as it was (the token is
    the node's identity, made before its first call so that a crash can never lose a token
    the bin-manager has taken: docs/security.md)."""
    told = (host.log_file, host.node_token_file, host.store_dir / ".last-tick.json")
    return {
        str(p.relative_to(host.root)): p.read_bytes()
        for p in sorted(host.root.rglob("*"))
        if p.is_file() and p not in told
    }


def _progress(bin_manager: BinManager, sha: str) -> list[str]:
    """The statuses this node reported for `sha`, oldest first."""
    reports = bin_manager.admin_get("/nodes/host-001").json()["data"]["progress"]
    return [p["status"] for p in reversed(reports) if p["targetHash"] == sha]


def test_api_dripping_its_answer_ends_the_run_at_http_timeout(tmp_path: Path) -> None:
    keepalive = b'{"code":0,"message":"success","data":{}}'
    # One byte every 2 s, status line included.
    with Loopback(drip(keepalive), keep_alive=False) as api:
        host = Agent(tmp_path / "host", f"{api.url}/api/v1", f"unix://{tmp_path}/none.sock")
        content = program("1")
        host.binary("app").write_bytes(content)
        host.write_manifest("app")
        doc = host.manifest()
        doc["binaries"][0]["version"] = sha256(content)
        host.manifest_path.write_text(json.dumps(doc, indent=2))
        before = _files(host)
        result, elapsed = host.timed("run", limit=HANG, HTTP_TIMEOUT="5")
    assert result.returncode == 75, host.debug(result)
    assert elapsed < 5 + SLACK, host.debug(result)
    # A new node's first call is its enrolment (docs/security.md); any call is bounded so.
    assert (
        f"API POST {api.url}/api/v1/enrol: no complete answer within 5 s (HTTP_TIMEOUT)"
        in host.log()
    )
    assert result.stderr == ""  # a retry: no cron mail
    assert _files(host) == before


def test_stalled_download_is_abandoned_kept_and_finished_by_the_next_run(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    content = program("2") + b"#" * 20_000 + b"\n"  # about 5 minutes at 64 bytes a second
    sha = bin_manager.publish("app", content)
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    link = drip(
        content, piece=64, pause=1.0, headers_at_once=True, content_type="application/octet-stream"
    )
    with Loopback(link, keep_alive=False) as slow:
        result, elapsed = agent.timed(
            "run", limit=HANG, DOWNLOAD_BASE_URL=f"{slow.url}/download", DOWNLOAD_STALL_TIMEOUT="3"
        )
    assert result.returncode == 75, agent.debug(result)
    assert elapsed < 3 + 2 * SLACK, agent.debug(result)  # the API calls come before it
    log = agent.log()
    assert f"download {slow.url}/download/app?sha256={sha}&arch=" in log
    assert (
        "stalled: less than 64 KiB in 3 s (DOWNLOAD_STALL_TIMEOUT); "
        "partial file kept for the next tick"
    ) in log
    assert len(slow.seen) == 1  # a slow link stays slow: not retried within the tick
    kept = (agent.store_dir / "app" / f".{sha}.part").read_bytes()
    assert 0 < len(kept) < len(content)
    assert content.startswith(kept)
    assert not agent.binary("app").exists()
    assert agent.entry("app")["version"] == ""
    assert _progress(bin_manager, sha) == ["in_progress", "failed"]

    result = agent.run()  # from the bin-manager itself this time
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha
    assert agent.entry("app")["history"][sha] == "ok"
    assert _progress(bin_manager, sha)[-1] == "success"
    assert not (agent.store_dir / "app" / f".{sha}.part").exists()
    supervisord.wait_running("app")


def test_hung_supervisord_ends_the_run_at_supervisor_timeout_with_nothing_replaced(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha1 = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0
    pid = supervisord.wait_running("app")
    sha2 = bin_manager.publish("app", program("2"))

    with supervisord.stopped():
        result, elapsed = agent.timed("run", limit=HANG, SUPERVISOR_TIMEOUT="2")
    assert result.returncode == 75, agent.debug(result)
    assert elapsed < 2 + SLACK + 2, agent.debug(result)  # the download comes before it
    assert (
        f"supervisor {supervisord.socket_url}: info app: no answer within 2 s "
        "(SUPERVISOR_TIMEOUT; is supervisord stopped or hung?)"
    ) in agent.log()
    assert agent.installed_sha("app") == sha1
    entry = agent.entry("app")
    assert entry["version"] == sha1
    assert sha2 not in entry["history"]  # not even recorded as attempted
    assert supervisord.pid("app") == pid  # not restarted
    assert _progress(bin_manager, sha2) == ["in_progress", "failed"]

    result = agent.run()  # supervisord answers again
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha2
    entry = agent.entry("app")
    assert (entry["version"], entry["previousVersion"]) == (sha2, sha1)
    assert entry["history"][sha2] == "ok"
    assert supervisord.wait_running("app") != pid
