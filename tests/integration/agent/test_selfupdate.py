"""The one-file agent keeps itself at the published version, and never ends up broken.

The agent under test is `make dist`'s file, run by the machine's python3 from the host
layout, as cron runs it; the releases it updates to are published to a real bin-manager.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support.agent import Agent, sha256
from tests.support.py39 import build_onefile
from tests.support.server import BinManager

HOST_PYTHON = "/usr/bin/python3"
CRASH_POINTS = ("after-download", "after-self-test", "after-replace", "before-manifest")


@pytest.fixture(scope="module")
def onefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_onefile(tmp_path_factory.mktemp("dist"))


def another_build(onefile: Path, out: Path, tag: bytes) -> bytes:
    """The same agent with a different zip comment: another release, still a good agent."""
    shutil.copy2(onefile, out)
    with zipfile.ZipFile(out, "a") as archive:
        archive.comment = b"build " + tag
    return out.read_bytes()


def broken_agent(out: Path) -> bytes:
    """A zipapp that starts and fails at once: what a bad agent build looks like."""
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("__main__.py", "import sys\nsys.exit('broken agent build')\n")
    return out.read_bytes()


@pytest.fixture
def host(agent: Agent, onefile: Path) -> tuple[Agent, Path]:
    """`agent` running as the one-file agent installed at ROOT/usr-local/ansible-proxy."""
    path = agent.root / "usr-local" / "ansible-proxy"
    path.parent.mkdir(parents=True)
    shutil.copy2(onefile, path)
    path.chmod(0o755)
    agent.command = [HOST_PYTHON, str(path)]
    agent.env["SHIV_ROOT"] = str(agent.root / "shiv")
    agent.write_manifest("ansible-proxy")
    return agent, path


def works(path: Path) -> bool:
    done = subprocess.run(
        [HOST_PYTHON, str(path), "--version"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def test_the_agent_self_tests_the_new_version_then_replaces_itself(
    bin_manager: BinManager, host: tuple[Agent, Path], tmp_path: Path
) -> None:
    agent, path = host
    old = sha256(path.read_bytes())
    new = bin_manager.publish("ansible-proxy", another_build(path, tmp_path / "v2.pyz", b"2"))

    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    assert sha256(path.read_bytes()) == new
    assert works(path)
    entry = agent.entry("ansible-proxy")
    assert (entry["version"], entry["previousVersion"]) == (new, old)
    assert entry["history"][new] == "ok"
    assert (agent.store_dir / "ansible-proxy" / old).is_file()  # the way back, kept
    assert "agent replaced" in agent.log()
    again = agent.run()  # now run by the new agent itself
    assert again.returncode == 0, agent.debug(again)
    assert sha256(path.read_bytes()) == new


def test_a_new_agent_that_fails_its_self_test_never_replaces_the_running_one(
    bin_manager: BinManager, host: tuple[Agent, Path], tmp_path: Path
) -> None:
    agent, path = host
    before = path.read_bytes()
    bad = bin_manager.publish("ansible-proxy", broken_agent(tmp_path / "bad.pyz"))

    result = agent.run()
    assert result.returncode == 1, agent.debug(result)
    assert path.read_bytes() == before
    assert works(path)
    assert "self-test" in result.stderr
    assert "broken agent build" in result.stderr
    assert agent.entry("ansible-proxy")["history"][bad] == "err"  # quarantined
    again = agent.run()
    assert again.returncode == 0, agent.debug(again)
    assert path.read_bytes() == before


def unanswered_agent(out: Path) -> bytes:
    """A zipapp whose self-test ends as an agent's does when the API does not answer it:
    exit 75, "retry next tick" — no verdict on the new agent."""
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "__main__.py",
            "import sys\n"
            "print('ansible-proxy: API GET /keepalive: unreachable', file=sys.stderr)\n"
            "sys.exit(75)\n",
        )
    return out.read_bytes()


def test_a_self_test_that_does_not_finish_is_retried_not_quarantined(
    bin_manager: BinManager, host: tuple[Agent, Path], tmp_path: Path
) -> None:
    agent, path = host
    before = path.read_bytes()
    new = bin_manager.publish("ansible-proxy", unanswered_agent(tmp_path / "new.pyz"))

    for _ in range(2):  # each tick tries it again
        result = agent.run()
        assert result.returncode == 75, agent.debug(result)  # quiet under cron
        assert result.stderr == ""
        assert path.read_bytes() == before
        assert new not in agent.entry("ansible-proxy").get("history", {})  # never quarantined
    assert agent.log().count("self-test did not finish (exit 75: ansible-proxy: API GET") == 2
    report = bin_manager.admin_get("/nodes/host-001").json()["data"]["progress"][0]
    assert (report["targetHash"], report["status"], report["cause"]) == (new, "failed", "host")
    assert "tried again next tick" in report["reason"]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_any_step_the_host_keeps_a_working_agent(
    bin_manager: BinManager, host: tuple[Agent, Path], tmp_path: Path, point: str
) -> None:
    agent, path = host
    new = bin_manager.publish("ansible-proxy", another_build(path, tmp_path / "v2.pyz", b"2"))

    killed = agent.run(ANSIBLE_PROXY_TEST_CRASH_AT=point)
    assert killed.returncode == -9, agent.debug(killed)
    assert works(path)  # the old agent or the new one, whole
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left

    converged = agent.run()
    assert converged.returncode == 0, agent.debug(converged)
    assert sha256(path.read_bytes()) == new
    assert agent.entry("ansible-proxy")["version"] == new
    assert works(path)
