"""`make demo` tells its whole story (install, upgrade, rollback; then a staged rollout over
three hosts: a broken release halted at the canary, a good one wave by wave) and stops
what it started."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[3]


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _web(state: Path, host: str) -> dict[str, Any]:
    """The `web` entry of a demo host's bin-manifests."""
    manifest = json.loads((state / "hosts" / host / "etc" / "bin-manifests.json").read_text())
    entry: dict[str, Any] = manifest["binaries"][0]
    return entry


def _sha(out: str, version: str) -> str:
    """The 12-character sha256 prefix the demo printed when it published web `version`."""
    found = re.search(rf"published web {version}\b.*: sha256 ([0-9a-f]{{12}})", out)
    assert found, out
    return found.group(1)


def _pids(section: str) -> dict[str, tuple[int, int]]:
    """host -> (web's pid before, pid now), from the lines `demo-host-N: web-N is …`."""
    found = re.findall(r"(demo-host-\d): web-\d is RUNNING, pid (\d+) -> (\d+)", section)
    return {host: (int(before), int(now)) for host, before, now in found}


def test_demo_story_upgrades_rolls_back_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(state)]
    result = subprocess.run(
        [*demo, "--stop-at-end", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=240,
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

    # Chapter 2: three hosts, v1 everywhere; a staged policy set by the operator's command.
    hosts = ("demo-host-1", "demo-host-2", "demo-host-3")
    chapter = out.split("chapter 2: a staged rollout")[1]
    for index, host in enumerate(hosts, 1):
        assert re.search(rf"{host}: web-{index} is RUNNING, pid \d+; port \d+ answers: 'web v1'",
                         chapter)  # fmt: skip
    assert "$ bin-manager rollout set web --canary 1 --waves 50%,100% --bake" in chapter
    v1, v2, v3 = (_sha(chapter, version) for version in ("v1", "v2", "v3"))
    # The broken v2: tried by the canary alone, which rolled back; halted and reverted.
    during_v2, during_v3 = chapter.split("published web v2")[1].split("published web v3")
    canary = re.search(r"the canary is (demo-host-\d)", during_v2)
    assert canary, during_v2
    others = [host for host in hosts if host != canary.group(1)]
    assert f"{canary.group(1)} (the canary): its agent installs v2" in during_v2
    assert "(wave 1)" not in during_v2
    assert f"{canary.group(1)} failed: " in during_v2
    assert "the bin-manager halted the rollout: 1 of 1 nodes of the canary failed" in during_v2
    assert "and reverted it: v1 is the latest again, v2 is marked bad" in during_v2
    assert "rolled back, previous version running" in during_v2  # the canary's agent log
    assert "halted and reverted" in during_v2  # `bin-manager rollout status web`
    assert "/dashboard/bins/web" in during_v2
    pids = _pids(during_v2)
    assert sorted(pids) == list(hosts)
    assert all(pids[host][0] == pids[host][1] for host in others)  # never restarted
    assert pids[canary.group(1)][0] != pids[canary.group(1)][1]
    assert during_v2.count("answers: 'web v1'") == 3
    for host in hosts:  # only the canary's manifest knows v2: quarantined there
        tried = [result for sha, result in _web(state, host)["history"].items()
                 if sha.startswith(v2)]  # fmt: skip
        assert tried == (["err"] if host == canary.group(1) else []), host
    # The good v3 walks through the waves, in order, each after the bake; all run it.
    steps = [
        f"{canary.group(1)} (the canary): its agent installs v3",
        "the canary stayed healthy for ",
        "wave 1 starts",
        "wave 1 stayed healthy for ",
        "wave 2 starts",
        "the rollout completed",
    ]
    positions = [during_v3.find(step) for step in steps]
    assert -1 not in positions, during_v3
    assert positions == sorted(positions), during_v3
    assert during_v3.count("its bake starts") == 3  # one host a wave
    assert re.search(rf"completed: {v3} \(previous {v1}\)", during_v3)  # rollout status
    assert during_v3.count("answers: 'web v3'") == 3
    for host in hosts:
        entry = _web(state, host)
        assert entry["version"].startswith(v3), host
        assert entry["history"][entry["version"]] == "ok"

    # Everything it started is stopped, by PID, including the services under supervisord.
    assert "demo stopped (--stop-at-end)" in out
    groups = [int(pid) for pid in re.findall(r"stopped process group (\d+)", out)]
    assert len(groups) == 6  # four agents, supervisord, bin-manager
    services = [int(pid) for pid in re.findall(r" is RUNNING, pid (\d+)", out)]
    services += [int(pid) for pid in re.findall(r" is RUNNING, pid \d+ -> (\d+)", out)]
    assert all(_gone(pid) for pid in groups + services)
    assert not (state / "pids").exists()
    assert os.stat(state / "admin-token").st_mode & 0o077 == 0

    # make demo-stop with nothing running is safe and says so.
    stopped = subprocess.run(
        [*demo, "--stop"], capture_output=True, text=True, timeout=60, check=False
    )
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "==> demo stopped"
