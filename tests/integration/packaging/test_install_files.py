"""`ansible-proxy install-files` from an installed wheel: the logrotate file and the systemd
units come with the package (an agent-only host has no source tree), written where the
system reads them, and accepted by the real `logrotate -d` and `systemd-analyze verify`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.packaging.rotation import DEFAULT_LOG, logrotate
from tests.support.install import build_wheel, install

UNITS = (
    "ansible-proxy.service",
    "ansible-proxy.timer",
    "ansible-proxy-check.service",
    "ansible-proxy-check.timer",
)


@pytest.fixture(scope="module")
def wheel_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ansible-proxy` of a virtualenv with the built wheel installed (no source tree)."""
    work = tmp_path_factory.mktemp("wheel")
    return install(work / "agent", build_wheel(work / "dist")) / "ansible-proxy"


def _install_files(agent: Path, root: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(agent), "install-files", "--dest-root", str(root), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root.parent,  # not the checkout: the files must come from the installed package
    )


def test_the_logrotate_file_from_the_wheel_passes_logrotate(
    wheel_agent: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    done = _install_files(wheel_agent, root, "--logrotate")
    installed = root / "etc" / "logrotate.d" / "ansible-proxy"
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"wrote {installed}\n"
    assert installed.stat().st_mode & 0o777 == 0o644

    dry = logrotate(installed, tmp_path / "state", "-d")
    assert dry.returncode == 0, dry.stderr
    assert f"rotating pattern: {DEFAULT_LOG}  weekly (8 rotations)" in dry.stderr
    assert "error" not in dry.stderr.lower()


def test_the_systemd_units_from_the_wheel_pass_systemd_analyze(
    wheel_agent: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    done = _install_files(wheel_agent, root, "--systemd")
    assert (done.returncode, done.stderr) == (0, "")
    units = [root / "etc" / "systemd" / "system" / unit for unit in UNITS]
    assert done.stdout == "".join(f"wrote {unit}\n" for unit in units)
    # Not in /usr/local/bin here: the units run the program that wrote them.
    service = units[0].read_text()
    assert f"ExecStart={wheel_agent.resolve()} run\n" in service

    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # parse them instead: each names what it runs or what it starts
        for unit in units:
            assert "[Unit]" in unit.read_text()
        return
    verified = subprocess.run(
        [analyze, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (verified.returncode, verified.stderr) == (0, "")


def test_a_file_edited_by_hand_is_kept_unless_forced(wheel_agent: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert _install_files(wheel_agent, root, "--logrotate", "--systemd").returncode == 0
    edited = root / "etc" / "logrotate.d" / "ansible-proxy"
    edited.write_text(edited.read_text().replace("rotate 8", "rotate 30"))
    timer = root / "etc" / "systemd" / "system" / "ansible-proxy.timer"
    timer.unlink()

    refused = _install_files(wheel_agent, root, "--systemd", "--logrotate")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"ansible-proxy: install-files: {edited} differs from the shipped file (edited by "
        "hand?); nothing written. Compare them, then rerun with --force to replace it\n"
    )
    assert "rotate 30" in edited.read_text()
    assert not timer.exists()  # nothing written, not even the missing unit

    again = _install_files(wheel_agent, root, "--logrotate", "--systemd", "--force")
    assert again.returncode == 0, again.stderr
    assert f"replaced {edited}\n" in again.stdout
    assert f"wrote {timer}\n" in again.stdout
    assert f"unchanged {timer.with_suffix('.service')}\n" in again.stdout
    assert "rotate 8\n" in edited.read_text()
