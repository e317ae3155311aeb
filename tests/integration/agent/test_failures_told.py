"""Every failure is told: one line per failed binary on stderr, `failed` to the server.

And every fault names the file or URL and the reason in one line, never a traceback:
a full STORE_DIR, a read-only manifest, a 206 nobody asked for, an HTML page served as
the binary, an entry removed mid-upgrade, a supervisor socket the agent may not open.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.agent import Agent, program, sha256
from tests.support.loopback import Exchange, Loopback, answer, trickle
from tests.support.procs import wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

NOBODY = 65534


def progress(bin_manager: BinManager, node: str = "host-001") -> list[tuple[str, str]]:
    """(targetHash, status) of every progress report of `node`, oldest first."""
    answer = bin_manager.admin_get(f"/nodes/{node}")
    if answer.status_code == 404:  # not registered yet
        return []
    detail = answer.json()["data"]
    return [(p["targetHash"], p["status"]) for p in reversed(detail["progress"])]


def last_cause(bin_manager: BinManager, node: str = "host-001") -> str:
    """The cause the bin-manager stored for the node's newest progress report."""
    cause: str = bin_manager.admin_get(f"/nodes/{node}").json()["data"]["progress"][0]["cause"]
    return cause


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stderr.splitlines()


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at `path` (the tests run as root, as the agent does)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_failed_deploys_print_one_line_each_and_report_failed(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    bin_manager.publish("web", program("1"))
    bin_manager.publish("fine", program("1"))
    agent.write_manifest("web", "fine")
    for name in ("web", "fine"):
        supervisord.add_program(name, agent.binary(name))
    assert agent.run().returncode == 0
    bad = bin_manager.publish("web", program("2", mode="exit"))
    ghost = bin_manager.publish("ghost", program("1"))  # no supervisor program named ghost
    doc = agent.manifest()
    doc["binaries"].append({"serviceName": "ghost", "binaryName": "ghost", "version": ""})
    agent.manifest_path.write_text(json.dumps(doc))

    result = agent.run()  # stderr is a pipe, as under cron

    assert result.returncode == 1, agent.debug(result)
    lines = stderr_lines(result)
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("ansible-proxy: web: web@")
    assert "rolled back" in lines[0]
    assert lines[1].startswith("ansible-proxy: ghost: ")
    assert "no program named 'ghost'" in lines[1]
    assert "Traceback" not in result.stderr
    reports = progress(bin_manager)
    assert reports[-1] == (ghost, "failed")  # no event is left "in progress"
    assert (bad, "failed") in reports
    assert not [r for r in reports if r[1] == "in_progress" and (r[0], "failed") not in reports
                and (r[0], "success") not in reports]  # fmt: skip


def test_html_page_served_as_the_binary_says_so(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    page = b"<html><body>Please log in</body></html>"
    with Loopback(answer(200, page, "text/html; charset=utf-8"), keep_alive=False) as portal:
        result = agent.run(DOWNLOAD_BASE_URL=f"{portal.url}/download")
    assert result.returncode == 1, agent.debug(result)
    (line,) = stderr_lines(result)
    assert f"download {portal.url}/download/app?sha256={sha}" in line
    assert f"sha256 mismatch: got {sha256(page)[:12]} from {len(page)} bytes of text/html" in line
    assert "login page" in line
    assert progress(bin_manager)[-1] == (sha, "failed")


def test_a_206_to_a_request_without_range_is_taken_when_it_is_the_whole_file(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    content = program("1")
    sha = bin_manager.publish("app", content)
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))

    def partial(req: Exchange) -> None:
        req.send_response(206)
        req.send_header("Content-Range", f"bytes 0-{len(content) - 1}/{len(content)}")
        req.send_header("Content-Length", str(len(content)))
        req.end_headers()
        req.wfile.write(content)

    with Loopback(partial, keep_alive=False) as odd:
        result = agent.run(DOWNLOAD_BASE_URL=f"{odd.url}/download")
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha

    def middle(req: Exchange) -> None:
        req.send_response(206)
        req.send_header("Content-Range", f"bytes 10-19/{len(content)}")
        req.send_header("Content-Length", "10")
        req.end_headers()
        req.wfile.write(content[10:20])

    bin_manager.publish("app", program("2"))
    with Loopback(middle, keep_alive=False) as odder:
        again = agent.run(DOWNLOAD_BASE_URL=f"{odder.url}/download")
    assert again.returncode == 75, agent.debug(again)
    assert "answered 206 Partial Content (bytes 10-19/" in agent.log()
    assert "to a request for the whole file" in agent.log()
    assert "unexpected" not in agent.log()
    assert agent.installed_sha("app") == sha


@pytest.mark.host_only
def test_full_store_disk_names_the_path_and_removes_the_partial_download(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    content = program("big") + b"#" * (3 * 1024 * 1024) + b"\n"
    sha = bin_manager.publish("big", content)
    agent.write_manifest("big")
    supervisord.add_program("big", agent.binary("big"))
    with tmpfs(agent.store_dir, "1m"):
        result = agent.run()
        left = sorted(p.name for p in (agent.store_dir / "big").iterdir())
    assert result.returncode == 1, agent.debug(result)
    (line,) = stderr_lines(result)
    assert f"STORE_DIR: cannot write {agent.store_dir}/big/.{sha}.part" in line
    assert "No space left on device (partial download removed)" in line
    assert "Traceback" not in result.stderr
    assert left == []  # the disk is not kept full tick after tick
    assert not agent.binary("big").exists()
    assert agent.entry("big")["version"] == ""
    assert progress(bin_manager)[-1] == (sha, "failed")
    assert last_cause(bin_manager) == "host"  # the host's disk, not the release


@pytest.mark.host_only
def test_read_only_manifest_directory_is_a_configuration_error(
    bin_manager: BinManager, agent: Agent
) -> None:
    bin_manager.publish("app", program("1"))
    etc = agent.manifest_path.parent
    config = agent.config.read_text()
    with tmpfs(etc, "1m"):
        agent.config.write_text(config)
        agent.write_manifest("app")
        before = agent.manifest_path.read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(etc)], check=True)
        result = agent.run()
        after = agent.manifest_path.read_bytes()
    assert result.returncode == 2, agent.debug(result)
    (line,) = stderr_lines(result)
    assert line == (
        f"ansible-proxy: manifest {agent.manifest_path}: cannot write: Read-only file system"
    )
    assert "cannot write: Read-only file system" in agent.log()
    assert after == before


def test_entry_removed_during_the_watch_window_is_left_alone_with_a_clear_line(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    bin_manager.publish("app", program("1"))
    bin_manager.publish("other", program("1"))
    agent.write_manifest("app", "other")
    for name in ("app", "other"):
        supervisord.add_program(name, agent.binary(name))
    assert agent.run().returncode == 0
    new = bin_manager.publish("app", program("2"))
    pid = supervisord.pid("app")
    run = agent.spawn(WATCH_SECONDS="6")
    try:
        wait_until(lambda: supervisord.pid("app") not in (0, pid), 30, "the restart of app")
        doc = agent.manifest()
        doc["binaries"] = [b for b in doc["binaries"] if b["binaryName"] != "app"]
        agent.manifest_path.write_text(json.dumps(doc, indent=2))  # the operator's edit
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait(10)
    assert run.returncode == 0, f"{err}\n{agent.log()}"
    assert f"manifest {agent.manifest_path}: app is no longer listed" in agent.log()
    assert "unexpected" not in agent.log()
    assert "Traceback" not in err
    assert [b["binaryName"] for b in agent.manifest()["binaries"]] == ["other"]
    assert progress(bin_manager)[-1] == (new, "failed")  # not left "in progress"


def test_a_symlinked_manifest_stays_a_link_and_its_edits_count(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    checkout = agent.root / "checkout"
    checkout.mkdir()
    real = checkout / "bin-manifests.json"
    agent.write_manifest("app")
    agent.manifest_path.rename(real)
    agent.manifest_path.symlink_to(real)
    sha = bin_manager.publish("app", program("1"))
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0

    assert agent.manifest_path.is_symlink()
    assert json.loads(real.read_text())["binaries"][0]["version"] == sha
    doc = json.loads(real.read_text())
    doc["binaries"].append({"serviceName": "two", "binaryName": "two", "version": ""})
    real.write_text(json.dumps(doc))  # a config-management checkout updates the real file
    two = bin_manager.publish("two", program("2"))
    supervisord.add_program("two", agent.binary("two"))
    assert agent.run().returncode == 0, agent.log()
    assert agent.installed_sha("two") == two
    assert agent.manifest_path.is_symlink()
    assert sorted(p.name for p in checkout.iterdir()) == ["bin-manifests.json"]


def test_a_hostile_server_cannot_forge_log_lines(tmp_path: Path) -> None:
    forged = "2026-01-01 00:00:00 [1] INFO app@000000000000: upgraded and healthy"
    body = json.dumps({"code": 500, "message": f"boom\n{forged}"}).encode()
    with Loopback(answer(500, body, "application/json"), keep_alive=False) as hostile:
        host = Agent(tmp_path / "host", f"{hostile.url}/api/v1", "unix:///nonexistent.sock")
        host.write_manifest("app")
        result = host.run()
    assert result.returncode == 75, host.debug(result)
    lines = host.log().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")]
    assert any(f"boom\\n{forged}" in line for line in lines)


def test_supervisor_socket_not_ours_to_open_is_a_configuration_error(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha1 = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0
    supervisord.wait_running("app")
    bin_manager.publish("app", program("2"))
    # Root without CAP_DAC_OVERRIDE, and a socket owned by another user (mode 0700): the
    # agent runs as root everywhere else here, so this is how "permission denied" happens.
    stat = supervisord.sock.stat()
    os.chown(supervisord.sock, NOBODY, NOBODY)
    os.chmod(supervisord.sock, 0o700)
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    try:
        result = subprocess.run(
            [*drop, *agent.argv("run")], env=agent.env, capture_output=True, text=True,
            timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        check = subprocess.run(
            [*drop, *agent.argv("check", "--json")], env=agent.env, capture_output=True,
            text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.chown(supervisord.sock, stat.st_uid, stat.st_gid)
        os.chmod(supervisord.sock, stat.st_mode & 0o7777)
    assert result.returncode == 2, agent.debug(result)
    (line,) = stderr_lines(result)
    assert f"SUPERVISOR_URL {supervisord.socket_url}: permission denied" in line
    assert agent.installed_sha("app") == sha1  # nothing replaced
    assert check.returncode == 3, check.stderr + agent.log()
    (service,) = json.loads(check.stdout)["services"]
    assert service["checks"]["process"]["outcome"] == "unknown"  # never "healthy" by name
    assert "permission denied" in service["checks"]["process"]["detail"]
    assert service["action"] == "none"


@pytest.mark.host_only
def test_cron_line_keeps_stderr_so_cron_mails_the_failure(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, tmp_path: Path
) -> None:
    cron_file = tmp_path / "cron.d" / "ansible-proxy"
    wrote = agent.run("--path", str(cron_file), command="install-cron")
    assert wrote.returncode == 0, wrote.stderr
    line = next(
        row for row in cron_file.read_text().splitlines() if row.endswith(" run >/dev/null")
    )
    command = line.split(" root ", 1)[1]
    bin_manager.publish("app", program("1", mode="exit"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    started = time.monotonic()
    env = ["env", "-i", *(f"{k}={v}" for k, v in agent.env.items())]  # cron's bare env
    result = subprocess.run(
        [*env, "/bin/sh", "-c", command], capture_output=True, text=True, timeout=120,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert time.monotonic() - started < 120
    assert result.returncode == 1, agent.debug(result)
    assert result.stdout == ""
    (mail,) = stderr_lines(result)
    assert mail.startswith("ansible-proxy: app: app@")


def test_a_run_ended_by_sigterm_reports_failed(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    content = program("slow") + b"#" * 200_000 + b"\n"
    sha = bin_manager.publish("slow", content)
    agent.write_manifest("slow")
    supervisord.add_program("slow", agent.binary("slow"))
    with Loopback(trickle(content, 40, 0.5), keep_alive=False) as link:  # about 20 s
        run = agent.spawn(DOWNLOAD_BASE_URL=f"{link.url}/download")
        try:
            wait_until(lambda: (sha, "in_progress") in progress(bin_manager), 30, "in_progress")
            run.send_signal(signal.SIGTERM)  # systemd stopping it, a stale-lock takeover
            _, err = run.communicate(timeout=30)
        finally:
            run.kill()
            run.wait(10)
    assert run.returncode == 128 + signal.SIGTERM  # unwound, not killed mid-write
    assert "Traceback" not in err
    assert progress(bin_manager)[-1] == (sha, "failed")
    assert last_cause(bin_manager) == "host"  # stopped, not failed by the release
    assert not agent.binary("slow").exists()
    assert agent.leftovers() == []
