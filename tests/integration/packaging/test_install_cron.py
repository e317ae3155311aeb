"""`ansible-proxy install-cron`: the cron lines keep working after a reinstall elsewhere.

The lines name `ansible-proxy` when cron's PATH finds this very program (a /usr/local/bin
link, pipx); otherwise they hold its absolute path and install-cron warns on stderr.
The lines are then run as cron runs them: /bin/sh -c, with only the file's PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ansible_proxy.agent.daemon import CRON_PATH, install_cron
from tests.support.agent import AGENT

# What cron mails when a line runs the agent: a config error, exit 2 (no server needed).
AGENT_RAN = (2, "ansible-proxy: BIN_MANAGER_API is not set (config file, environment or flag)\n")


def _install(prefix: Path) -> Path:
    """A copy of the console script (it names the venv's python): an install at `prefix`."""
    program = prefix / "bin" / "ansible-proxy"
    program.parent.mkdir(parents=True)
    shutil.copy2(AGENT, program)
    return program


def _install_cron(tmp_path: Path, program: Path, cron_path: str) -> tuple[str, list[str]]:
    """install-cron as `program` would run it (cli.py passes its resolved argv[0])."""
    warnings: list[str] = []
    config = tmp_path / "config"
    config.write_text("# no BIN_MANAGER_API: every run exits 2 with one line\n")
    cron_file = install_cron(
        tmp_path / "cron.d" / "ansible-proxy", program.resolve(), config, cron_path, warnings.append
    )
    return cron_file.read_text(), warnings


def _job(cron_text: str, subcommand: str) -> str:
    (line,) = [row for row in cron_text.splitlines() if f" {subcommand} --config " in row]
    minute, hour, day, month, weekday, user, command = line.split(None, 6)
    assert (minute, hour, day, month, weekday, user) == ("*", "*", "*", "*", "*", "root")
    return command


def _run_as_cron(cron_text: str, command: str) -> tuple[int, str]:
    """Run one line with cron's environment: SHELL and PATH from the file, nothing else."""
    env = dict(row.split("=", 1) for row in cron_text.splitlines() if row[:1].isupper())
    assert set(env) == {"SHELL", "PATH"}, env  # MAILTO stays a commented example
    run = subprocess.run(
        ["env", "-i", f"PATH={env['PATH']}", env["SHELL"], "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return run.returncode, run.stderr


def test_a_program_linked_on_crons_path_is_named_and_survives_a_reinstall(
    tmp_path: Path,
) -> None:
    first = _install(tmp_path / "opt" / "first")
    link_dir = tmp_path / "usr-local-bin"
    link_dir.mkdir()
    (link_dir / "ansible-proxy").symlink_to(first)  # as pipx or the Ansible role link it
    cron_path = f"{link_dir}:/usr/bin:/bin"

    text, warnings = _install_cron(tmp_path, first, cron_path)
    assert warnings == []
    assert f"\nPATH={cron_path}\n" in text
    assert "\nSHELL=/bin/sh\n" in text
    assert "\n# MAILTO=ops@example.org\n" in text
    run = _job(text, "run")
    assert run == f"ansible-proxy run --config {tmp_path / 'config'} >/dev/null"
    assert _job(text, "check").startswith("ansible-proxy check ")
    assert _run_as_cron(text, run) == AGENT_RAN

    # Reinstalled elsewhere, the old install gone, the link moved: the same line still runs.
    second = _install(tmp_path / "opt" / "second")
    (link_dir / "ansible-proxy").unlink()
    (link_dir / "ansible-proxy").symlink_to(second)
    shutil.rmtree(tmp_path / "opt" / "first")
    assert _run_as_cron(text, run) == AGENT_RAN


def test_a_program_off_crons_path_is_written_absolute_with_a_warning(tmp_path: Path) -> None:
    first = _install(tmp_path / "opt" / "first")
    empty = tmp_path / "usr-local-bin"
    empty.mkdir()

    text, (warning,) = _install_cron(tmp_path, first, f"{empty}:/usr/bin:/bin")
    run = _job(text, "run")
    assert run.startswith(f"{first} run --config ")
    assert _job(text, "check").startswith(f"{first} check --config ")
    assert f"no ansible-proxy on cron's PATH ({empty}:/usr/bin:/bin)" in warning
    assert f"the cron lines run {first}" in warning
    assert "`install-cron` is run again from the new install" in warning
    assert _run_as_cron(text, run) == AGENT_RAN

    # What the warning is about: after a reinstall elsewhere the line finds nothing.
    shutil.rmtree(tmp_path / "opt" / "first")
    code, mail = _run_as_cron(text, run)
    assert code == 127
    assert f"{first}: not found" in mail


def test_another_ansible_proxy_first_on_crons_path_is_not_trusted(tmp_path: Path) -> None:
    ours = _install(tmp_path / "opt" / "ours")
    old = _install(tmp_path / "opt" / "old")
    link_dir = tmp_path / "usr-local-bin"
    link_dir.mkdir()
    (link_dir / "ansible-proxy").symlink_to(old)

    text, (warning,) = _install_cron(tmp_path, ours, f"{link_dir}:/usr/bin:/bin")
    assert _job(text, "run").startswith(f"{ours} run ")
    assert f"cron's PATH finds another ansible-proxy first ({link_dir}/ansible-proxy)" in warning


def test_the_cli_warns_on_stderr_when_cron_cannot_find_it_by_name(tmp_path: Path) -> None:
    # What cron's PATH holds is the machine's: each case has its own right answer.
    found = shutil.which("ansible-proxy", path=CRON_PATH)
    target = tmp_path / "cron.d" / "ansible-proxy"
    config = tmp_path / "config"
    config.write_text("export BIN_MANAGER_API=https://bin-manager.example:8080/api/v1\n")
    result = subprocess.run(
        [str(AGENT), "install-cron", "--path", str(target), "--config", str(config)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {target}\n"
    if found is not None and Path(found).resolve() == AGENT.resolve():
        assert result.stderr == ""  # cron finds this very program by name
        assert f"* * * * * root ansible-proxy run --config {config} >/dev/null\n" in (
            target.read_text()
        )
    else:
        (warning,) = result.stderr.splitlines()
        where = (
            f"cron's PATH finds another ansible-proxy first ({found})"
            if found is not None
            else f"no ansible-proxy on cron's PATH ({CRON_PATH})"
        )
        assert warning.startswith(f"ansible-proxy: warning: {where}")
        assert f"* * * * * root {AGENT.resolve()} run --config {config} >/dev/null\n" in (
            target.read_text()
        )
    assert f"\nPATH={CRON_PATH}\n" in target.read_text()
