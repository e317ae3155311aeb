"""Overlapping runs and lock holders: a live, fresh holder is never ended, and each
binary is decided from the manifest as it is now, not as the tick first read it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.agent import Agent, program
from tests.support.procs import wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

SKIPPED = "another run is working on it (lock held): skipped"
ADOPTED = "BIN_DIR already holds the published version"

# A lock holder as another run would be: it takes `name`'s lock for `sha` through the
# agent's own code, says so, and then works (sleeps). `skew` moves its wall clock.
HOLDER = """\
import sys, time
from pathlib import Path
from ansible_proxy.client import locks
lock_dir, name, sha, skew = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
held = locks.acquire(lock_dir, name, sha, 600, clock=lambda: time.time() + skew)
print("held" if held is not None else "busy", flush=True)
time.sleep(600)
"""

Procs = list[subprocess.Popen[str]]


@pytest.fixture
def procs() -> Iterator[Procs]:
    """Processes a test starts; any still running at the end is killed by its PID."""
    started: Procs = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def install_v1(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, *names: str
) -> dict[str, str]:
    """Publish v1 of each name, manage them, install them with one run; their sha256s."""
    shas = {name: bin_manager.publish(name, program(f"{name}-1")) for name in names}
    agent.write_manifest(*names)
    for name in names:
        supervisord.add_program(name, agent.binary(name))
    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    for name in names:
        supervisord.wait_running(name)
        assert agent.installed_sha(name) == shas[name]
    return shas


def spawn(procs: Procs, agent: Agent, **env: str) -> subprocess.Popen[str]:
    run = agent.spawn(**env)
    procs.append(run)
    return run


def finish(runs: Procs, timeout: float) -> list[int]:
    """Each run's exit code (negative: ended by that signal), all within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    codes = []
    for run in runs:
        try:
            run.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.kill()
            run.communicate()
            pytest.fail(f"agent run {run.pid} still going after {timeout}s: killed")
        codes.append(run.returncode)
    return codes


def hold(
    procs: Procs, agent: Agent, name: str, sha: str, skew: float = 0.0
) -> subprocess.Popen[str]:
    """A live process holding `name`'s lock for `sha` (its wall clock `skew` seconds off)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(agent.lock_dir), name, sha, str(skew)],
        env=agent.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    procs.append(holder)
    assert holder.stdout is not None
    said = holder.stdout.readline()
    if said != "held\n":
        holder.kill()
        _, err = holder.communicate()
        pytest.fail(f"the holder did not get the lock: {said!r}\n{err}")
    return holder


def ended(holder: subprocess.Popen[str], timeout: float) -> int:
    """Wait for `holder` to end (reaping it at once, as its parent would); its exit code."""
    wait_until(lambda: holder.poll() is not None, timeout, f"holder {holder.pid} to end")
    return holder.returncode


def boot_clock() -> float:
    """Seconds since boot: the clock lock ages are measured on."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def restarts(supervisord: Supervisord, name: str) -> int:
    """How many times supervisord has started `name` so far."""
    log = (supervisord.workdir / "supervisord.log").read_text()
    return log.count(f"spawned: '{name}' with pid")


def healthy(agent: Agent, name: str, sha: str) -> int:
    """How many runs logged `name`@`sha` upgraded and healthy."""
    return agent.log().count(f" {name}@{sha[:12]}: upgraded and healthy")


def locks_left(agent: Agent) -> list[str]:
    return sorted(p.name for p in agent.lock_dir.glob("*.lock") if not p.name.startswith("."))


def test_second_run_during_first_ones_work_ends_no_run_and_restarts_each_once(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, procs: Procs
) -> None:
    install_v1(bin_manager, supervisord, agent, "a", "b")
    pids = {name: supervisord.pid(name) for name in ("a", "b")}
    started = {name: restarts(supervisord, name) for name in ("a", "b")}
    v2 = {name: bin_manager.publish(name, program(f"{name}-2")) for name in ("a", "b")}

    first = spawn(procs, agent)
    # The second run starts while the first restarts and watches "a": it finds "a"
    # locked, takes "b"; the first reaches "b" later, with a stale start-of-tick copy.
    wait_until(
        lambda: agent.installed_sha("a") == v2["a"] or first.poll() is not None,
        60,
        "the first run to replace a",
    )
    assert first.poll() is None, agent.log()
    second = spawn(procs, agent)

    codes = finish([first, second], 120)
    assert codes == [0, 0], agent.log()  # -15: a run was ended by the other
    for name in ("a", "b"):
        assert agent.installed_sha(name) == v2[name], agent.log()
        entry = agent.entry(name)
        assert entry["version"] == v2[name]
        assert entry["history"][v2[name]] == "ok"
        assert healthy(agent, name, v2[name]) == 1, agent.log()
        assert restarts(supervisord, name) == started[name] + 1, agent.log()
        assert supervisord.wait_running(name) != pids[name]
    assert "restoring" not in agent.log()
    assert locks_left(agent) == []
    assert agent.leftovers() == []


def test_fifty_simultaneous_runs_upgrade_each_binary_once(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, procs: Procs
) -> None:
    install_v1(bin_manager, supervisord, agent, "a", "b")
    started = {name: restarts(supervisord, name) for name in ("a", "b")}
    v2 = {name: bin_manager.publish(name, program(f"{name}-2")) for name in ("a", "b")}

    runs = [spawn(procs, agent) for _ in range(50)]
    codes = finish(runs, 180)
    assert [c for c in codes if c < 0] == [], agent.log()  # ended by a signal
    assert codes == [0] * 50, agent.log()
    for name in ("a", "b"):
        assert agent.installed_sha(name) == v2[name]
        entry = agent.entry(name)
        assert entry["version"] == v2[name]
        assert entry["history"][v2[name]] == "ok"
        assert healthy(agent, name, v2[name]) == 1, agent.log()
        assert restarts(supervisord, name) == started[name] + 1, agent.log()
        supervisord.wait_running(name)
    assert "restoring" not in agent.log()
    assert locks_left(agent) == []
    assert agent.leftovers() == []


def test_old_editor_buffer_saved_over_the_manifest_costs_no_restart(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    v1 = install_v1(bin_manager, supervisord, agent, "app")["app"]
    buffer = agent.manifest_path.read_text()  # the operator opens the manifest...
    v2 = bin_manager.publish("app", program("app-2"))
    upgraded = agent.run()
    assert upgraded.returncode == 0, agent.debug(upgraded)
    assert agent.installed_sha("app") == v2
    pid = supervisord.wait_running("app")
    started = restarts(supervisord, "app")

    # ...and saves the old buffer after the upgrade: a new file renamed over the old.
    saved = agent.manifest_path.with_name(".bin-manifests.json.swp")
    saved.write_text(buffer)
    os.replace(saved, agent.manifest_path)
    assert agent.entry("app")["version"] == v1

    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == v2
    assert supervisord.wait_running("app") == pid
    assert restarts(supervisord, "app") == started
    entry = agent.entry("app")
    assert (entry["version"], entry["previousVersion"]) == (v2, v1)
    assert entry["history"][v2] == "ok"
    log = agent.log()
    assert f"app@{v2[:12]}: {ADOPTED}, the manifest says {v1[:12]}: recorded it (no restart)" in (
        log
    )
    assert "restoring" not in log
    assert healthy(agent, "app", v2) == 1

    again = agent.run()
    assert again.returncode == 0, agent.debug(again)
    assert supervisord.pid("app") == pid
    assert agent.log().count(ADOPTED) == 1


LOCK_TIMEOUT = 6  # seconds: longer than an agent run takes on a busy machine


def test_lock_from_the_future_is_stale_after_lock_timeout_on_the_boot_clock(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, procs: Procs
) -> None:
    v1 = install_v1(bin_manager, supervisord, agent, "app")["app"]
    pid = supervisord.pid("app")
    v2 = bin_manager.publish("app", program("app-2"))

    # A run hung while the clock stepped back an hour: line 1 is in the future.
    asked = boot_clock()
    holder = hold(procs, agent, "app", v2, skew=3600)
    held = boot_clock()  # the lock was taken between `asked` and `held`
    created = (agent.lock_dir / f"app-{v2}.lock").read_text().splitlines()[0]
    assert float(created) > time.time() + 3000

    first = agent.run(LOCK_TIMEOUT=str(LOCK_TIMEOUT))
    assert boot_clock() - asked < LOCK_TIMEOUT, "the run was too slow: the lock was stale"
    assert first.returncode == 0, agent.debug(first)
    assert holder.poll() is None
    assert agent.installed_sha("app") == v1
    assert supervisord.pid("app") == pid
    assert f"app@{v2[:12]}: {SKIPPED}" in agent.log()

    wait_until(
        lambda: boot_clock() > held + LOCK_TIMEOUT + 0.5,
        LOCK_TIMEOUT + 5,
        "the lock to be LOCK_TIMEOUT old on the boot clock",
    )
    second = spawn(procs, agent, LOCK_TIMEOUT=str(LOCK_TIMEOUT))
    assert ended(holder, 30) == -signal.SIGTERM, agent.log()
    assert finish([second], 120) == [0], agent.log()
    assert agent.installed_sha("app") == v2
    entry = agent.entry("app")
    assert entry["version"] == v2
    assert entry["history"][v2] == "ok"
    assert supervisord.wait_running("app") != pid
    assert locks_left(agent) == []


def test_fresh_holder_of_another_version_is_never_ended(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, procs: Procs
) -> None:
    v1 = install_v1(bin_manager, supervisord, agent, "app")["app"]
    pid = supervisord.pid("app")
    v2 = bin_manager.publish("app", program("app-2"))
    holder = hold(procs, agent, "app", v1)  # e.g. a run putting v1 back

    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    time.sleep(0.5)  # a SIGTERM sent by the run would have landed by now
    assert holder.poll() is None, agent.log()
    assert agent.installed_sha("app") == v1
    assert agent.entry("app")["version"] == v1
    assert supervisord.pid("app") == pid
    assert f"app@{v2[:12]}: {SKIPPED}" in agent.log()

    holder.kill()  # the holder dies without releasing: its flock goes with it
    assert ended(holder, 10) == -signal.SIGKILL
    after = agent.run()
    assert after.returncode == 0, agent.debug(after)
    assert agent.installed_sha("app") == v2
    assert agent.entry("app")["history"][v2] == "ok"
    assert supervisord.wait_running("app") != pid
    assert locks_left(agent) == []  # the dead holder's lock of v1 is gone too
