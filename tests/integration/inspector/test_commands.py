"""`check` as an operator meets it without any service running: config errors, cron."""

from __future__ import annotations

from pathlib import Path

from tests.support.agent import AGENT, Agent
from tests.support.procs import LOOPBACK, free_port


def offline_agent(tmp_path: Path) -> Agent:
    """A host layout whose API and supervisor are not there (nothing is contacted)."""
    return Agent(
        tmp_path / "host", f"http://{LOOPBACK}:{free_port()}/api/v1", "unix:///nonexistent"
    )


def test_bad_manifest_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    agent = offline_agent(tmp_path)
    agent.manifest_path.write_text('{"binaries": [{"binaryName": "../evil"}]}')
    manifest = agent.manifest_path.read_bytes()
    result = agent.run("--json", command="check")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "binaryName '../evil' is not a valid name" in result.stderr
    assert agent.manifest_path.read_bytes() == manifest
    assert not agent.lock_dir.exists()
    assert not (agent.root / "inspector-state.json").exists()


def test_prometheus_url_without_scheme_is_a_config_error(tmp_path: Path) -> None:
    agent = offline_agent(tmp_path)
    agent.write_manifest("hello")
    result = agent.run(command="check", PROMETHEUS_URL="prom:9090")
    assert result.returncode == 2
    assert result.stderr == (
        "ansible-proxy: PROMETHEUS_URL must be an http:// or https:// URL: prom:9090\n"
    )


def test_install_cron_also_schedules_the_check(tmp_path: Path) -> None:
    agent = offline_agent(tmp_path)
    target = tmp_path / "cron.d" / "ansible-proxy"
    result = agent.run("--path", str(target), command="install-cron")
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert f"* * * * * root {AGENT.resolve()} run" in text
    assert f"* * * * * root {AGENT.resolve()} check" in text


def test_check_help_explains_exit_codes_and_keys(tmp_path: Path) -> None:
    result = offline_agent(tmp_path).run("--help", command="check")
    assert result.returncode == 0
    for text in ("--textfile", "--json", "CHECK_FAILURES", "PROMETHEUS_QUERY", "3 only unknowns"):
        assert text in result.stdout
