"""`make demo` tells its whole story (install, upgrade, rollback) and stops what it started."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[3]


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_demo_story_upgrades_rolls_back_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(state)]
    result = subprocess.run(
        [*demo, "--stop-at-end", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr

    # The agent enrolled on its first tick (node credentials), and never waited for approval.
    assert "enrolled with the bin-manager (fingerprint " in out
    assert "waiting for approval" not in out
    # v1 installed on both services, answering on their ports.
    assert re.search(r"supervisor: hello is RUNNING, pid \d+; port \d+ answers: 'hello v1'", out)
    assert re.search(r"greeter is RUNNING, pid \d+; port \d+ answers: 'greeter v1'", out)
    assert re.search(r"^ +hello +[0-9a-f]{12} +healthy: RUNNING", out, re.M)  # the inspector
    # v2: upgraded and restarted with a new pid.
    upgrade = re.search(r"hello upgraded to v2 and restarted: pid (\d+) -> (\d+)", out)
    assert upgrade, out
    assert upgrade.group(1) != upgrade.group(2)
    # v3: broken, rolled back to v2, reported, quarantined.
    after_v3 = out.split("published hello v3")[1]
    assert "rolling back" in after_v3
    assert "rolled back, previous version running" in after_v3
    assert "answers: 'hello v2'" in after_v3
    assert re.search(r"bin-manager: hello -> [0-9a-f]{12}: failed", after_v3)
    assert "latest is known bad (history err): not installing it" in after_v3
    assert re.search(r"hello +hello +\w{12} +\w{12} +err", after_v3)  # ansible-proxy status

    # Everything it started is stopped, by PID, including the services under supervisord.
    assert "demo stopped (--stop-at-end)" in out
    groups = [int(pid) for pid in re.findall(r"stopped process group (\d+)", out)]
    assert len(groups) == 3  # agent, supervisord, bin-manager
    services = [int(pid) for pid in re.findall(r" is RUNNING, pid (\d+)", out)]
    assert all(_gone(pid) for pid in groups + services)
    assert not (state / "pids").exists()
    assert os.stat(state / "admin-token").st_mode & 0o077 == 0

    # make demo-stop with nothing running is safe and says so.
    stopped = subprocess.run(
        [*demo, "--stop"], capture_output=True, text=True, timeout=60, check=False
    )
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "==> demo stopped"
