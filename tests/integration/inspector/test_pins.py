"""A fleet-wide pin is never undone by a host: the withdrawn release is never a target.

`bin-manager pin` moves the fleet back to an earlier release; the releases published
after it are withdrawn. The agent records the move back as such, and neither its watch
window nor the inspector ever puts a withdrawn release back.
"""

from __future__ import annotations

import json
from typing import Any

from tests.integration.inspector.conftest import Host, breakable, progress
from tests.support.procs import wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def reasons(bin_manager: BinManager, node: str = "host-001") -> list[tuple[str, str, str]]:
    """(targetHash, status, reason) of every progress report, oldest first."""
    detail: dict[str, Any] = bin_manager.admin_get(f"/nodes/{node}").json()["data"]
    return [
        (p["targetHash"], p["status"], p.get("reason") or "") for p in reversed(detail["progress"])
    ]


def test_an_unhealthy_pinned_release_is_left_for_a_person_never_rolled_forward(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    sha0, sha1, sha2 = host.install(
        bin_manager, supervisord, "webapp",
        breakable(host, "0"), breakable(host, "1"), breakable(host, "2"),
    )  # fmt: skip
    bin_manager.pin("webapp", sha1)  # the fleet moves off v2

    moved = host.run()
    assert moved.returncode == 0, host.debug(moved)
    assert host.installed_sha("webapp") == sha1
    entry = host.entry("webapp")
    assert entry["version"] == sha1
    assert entry["upgradePath"][sha1] == sha0  # not v2: v2 is nobody's rollback target
    assert entry["previousVersion"] == sha0
    assert entry["history"][sha2] == "ok"  # v2 did nothing wrong on this host
    assert "moved back: " in host.log()
    assert (sha1, "success", f"pin: moved back to {sha1[:12]} (withdrawn: {sha2[:12]})") in (
        reasons(bin_manager)
    )
    status = host.run(command="status")
    assert "- (pinned)" in status.stdout

    host.flag("1", "fatal")  # the pinned release goes bad on this host
    wait_until(lambda: supervisord.state("webapp") == "FATAL", 60, "webapp FATAL")
    mails = []
    for _ in range(3):
        result = host.run("--json", command="check")  # as cron runs it: stderr is mailed
        row = host.service(json.loads(result.stdout), "webapp")
        assert (result.returncode, row["action"]) == (1, "pinned"), result.stdout
        mails.append(result.stderr)
    assert mails[0].startswith(f"ansible-proxy check: webapp@{sha1[:12]}: pinned: ")
    assert mails[1:] == ["", ""]  # told once, not every minute
    assert host.installed_sha("webapp") == sha1  # neither v2 nor v0 behind the pin's back
    assert host.entry("webapp")["history"][sha1] == "ok"  # not quarantined either
    assert host.run().returncode == 0
    assert host.installed_sha("webapp") == sha1

    (host.flags / "1.fatal").unlink()
    sha3 = bin_manager.publish("webapp", breakable(host, "3"))  # a fix: the pin is over
    assert host.run().returncode == 0, host.log()
    assert host.installed_sha("webapp") == sha3
    assert host.entry("webapp")["upgradePath"][sha3] == sha1


def test_a_rollback_target_the_fleet_pinned_away_from_is_refused(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    """A host still on v3 while the fleet is pinned to v1: v3 goes bad, v2 (its rollback
    target) was withdrawn by the pin too: the inspector leaves it for a person."""
    sha1, sha2, sha3 = host.install(
        bin_manager, supervisord, "webapp",
        breakable(host, "1"), breakable(host, "2"), breakable(host, "3"),
    )  # fmt: skip
    hold = host.run("webapp", command="hold")  # this host sits out the pin for now
    assert hold.returncode == 0, hold.stderr
    bin_manager.pin("webapp", sha1)
    assert host.run().returncode == 0  # learns the withdrawn releases, installs nothing
    assert host.installed_sha("webapp") == sha3
    assert host.run("webapp", command="release").returncode == 0

    host.env["BIN_MANAGER_API"] = "http://127.0.0.1:9/api/v1"  # the API is gone meanwhile
    host.config.write_text(f'export BIN_MANAGER_API="{host.env["BIN_MANAGER_API"]}"\n')
    host.flag("3", "fatal")
    wait_until(lambda: supervisord.state("webapp") == "FATAL", 60, "webapp FATAL")
    code, answer = host.check()
    row = host.service(answer, "webapp")
    assert (code, row["action"]) == (1, "target-withdrawn"), answer
    assert host.installed_sha("webapp") == sha3
    assert sha2 not in [s for s, r in host.entry("webapp")["history"].items() if r == "err"]


def test_a_pinned_release_failing_its_watch_window_is_not_rolled_forward(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.flag("1", "fatal")  # v1 cannot start on this host any more
    sha1 = bin_manager.publish("webapp", breakable(host, "1"))
    host.write_manifest("webapp")
    supervisord.add_program("webapp", host.binary("webapp"))
    assert host.run().returncode == 1  # v1 itself fails here: nothing before it
    (host.flags / "1.fatal").unlink()
    assert host.run("webapp", sha1[:12], command="forget").returncode == 0
    assert host.run().returncode == 0
    sha2 = bin_manager.publish("webapp", breakable(host, "2"))
    assert host.run().returncode == 0
    assert host.installed_sha("webapp") == sha2

    host.flag("1", "fatal")
    bin_manager.pin("webapp", sha1)
    result = host.run()
    assert result.returncode == 1, host.debug(result)
    assert "was withdrawn by the bin-manager (pinned away from): left for a person" in (
        result.stderr
    )
    assert host.installed_sha("webapp") == sha1  # the fleet's choice, even if it fails here
    assert host.entry("webapp")["version"] == sha1
    assert progress(bin_manager)[-1] == (sha1, "failed")
    assert reasons(bin_manager)[-1][2].startswith("pin: the pinned release is unhealthy")
    assert host.run().returncode == 0  # not retried every minute, v2 never reinstalled
    assert host.installed_sha("webapp") == sha1
