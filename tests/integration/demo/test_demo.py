"""`make demo` tells its story end to end and stops everything it started."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[3]


def test_demo_publishes_and_answers_then_stops(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(state)]
    result = subprocess.run(
        [*demo, "--stop-at-end", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "publishing release v1 of the bin 'hello'" in out
    sha = out.split("published: sha256 ")[1].split()[0]
    assert f"(the file hashes to {sha})" in out
    assert f'"sha256":"{sha}"' in out  # what an agent is told by GET /bins/hello
    assert "demo stopped" in out
    started = [int(pid) for pid in re.findall(r"stopped process group (\d+)", out)]
    assert started, "the demo did not say what it stopped"
    assert not (state / "pids").exists()
    for pid in started:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    token = (state / "admin-token").read_text().strip()
    assert len(token) >= 16
    assert os.stat(state / "admin-token").st_mode & 0o077 == 0
