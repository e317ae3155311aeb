"""A check racing an agent run on the same binary: exactly one of them acts."""

from __future__ import annotations

import json

from tests.integration.inspector.conftest import Host, breakable, progress, spawn_check
from tests.support.agent import program
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def test_check_racing_a_run_leaves_the_binary_to_the_run(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    # v1 -> v2 installed: v2 has a rollback path, so a check that ignored the run's
    # lock would see the run's crashing v3 and wrongly roll v2 back to v1.
    host.env["CHECK_FAILURES"] = "1"
    sha1, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    sha3 = bin_manager.publish("hello", program("3", mode="exit"))

    run = host.spawn()
    actions = []
    while True:  # checks back to back for as long as the run lasts, and once after
        finished = run.poll() is not None
        check = spawn_check(host)
        out, err = check.communicate(timeout=120)
        assert check.returncode in (0, 1, 3), err
        row = host.service(json.loads(out), "hello")
        actions.append(row["action"])
        if row["outcome"] == "unhealthy":
            assert row["action"] == "busy", row
        if finished:
            break
    run.communicate(timeout=120)
    assert run.returncode == 1  # the run found v3 bad and rolled it back itself

    assert "rolled-back" not in actions
    assert actions[-1] == "none"
    entry = host.entry("hello")
    assert entry["version"] == sha2
    assert entry["history"] == {sha1: "ok", sha2: "ok", sha3: "err"}
    assert host.installed_sha("hello") == sha2
    assert supervisord.state("hello") == "RUNNING"
    assert progress(bin_manager).count((sha3, "failed")) == 1
    assert json.loads(host.state_file.read_text()).get("rollbacks", {}) == {}
