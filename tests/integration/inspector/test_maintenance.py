"""Maintenance is not a failure: a stopped program, a held binary, a lifted quarantine.

The real agent and inspector against a real supervisord and bin-manager, with cron-style
overlapping runs where the operator's commands could race them.
"""

from __future__ import annotations

import subprocess

from tests.integration.inspector.conftest import Host, breakable
from tests.support.agent import program
from tests.support.procs import free_port, wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def test_a_program_stopped_by_an_operator_is_left_alone(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    port = free_port()
    sha1, sha2 = host.install(
        bin_manager, supervisord, "web", breakable(host, "1", port), breakable(host, "2", port),
        port=port,
    )  # fmt: skip
    supervisord.call("stopProcess", "web", True)  # supervisorctl stop web
    for _ in range(3):  # more than CHECK_FAILURES
        code, answer = host.check()
        row = host.service(answer, "web")
        assert (code, row["outcome"], row["action"]) == (0, "stopped", "stopped"), answer
        assert "port" not in row["checks"]  # a stopped service's port says nothing
    assert host.installed_sha("web") == sha2
    assert host.entry("web")["history"] == {sha1: "ok", sha2: "ok"}  # not quarantined
    assert supervisord.state("web") == "STOPPED"  # not restarted behind the operator's back
    textfile = host.root / "inspector.prom"
    assert host.run("--textfile", str(textfile), command="check").returncode == 0
    assert 'ansible_proxy_service_healthy{service="web"} 2' in textfile.read_text()


def test_hold_pauses_upgrades_and_rollbacks_until_release(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    sha1, sha2 = host.install(
        bin_manager, supervisord, "app", breakable(host, "1"), breakable(host, "2")
    )
    held = host.run("app", "--reason", "kernel upgrade", command="hold")
    assert held.returncode == 0, held.stderr
    assert "app: held (kernel upgrade)" in held.stdout
    assert host.entry("app")["hold"] == "kernel upgrade"
    status = host.run(command="status")
    assert "kernel upgrade" in status.stdout

    sha3 = bin_manager.publish("app", breakable(host, "3"))
    assert host.run().returncode == 0
    assert host.installed_sha("app") == sha2  # no upgrade while held
    host.flag("2", "fatal")  # the held version crashes: the inspector does not touch it
    supervisord.call("stopProcess", "app", True)
    supervisord.call("startProcess", "app", False)
    wait_until(lambda: supervisord.state("app") in ("BACKOFF", "FATAL"), 30, "app failing")
    for _ in range(3):
        _, answer = host.check()
        row = host.service(answer, "app")
        assert row["action"] == "held", answer
        assert row["detail"] == "kernel upgrade"
    assert host.installed_sha("app") == sha2
    assert sha2 not in [s for s, r in host.entry("app")["history"].items() if r == "err"]

    released = host.run("app", command="release")
    assert released.returncode == 0, released.stderr
    assert "hold" not in host.entry("app")
    result = host.run()
    assert result.returncode == 0, host.debug(result)
    assert host.installed_sha("app") == sha3
    assert host.entry("app")["history"][sha3] == "ok"
    assert sha1 in host.entry("app")["history"]


def test_forget_lifts_a_quarantine_under_overlapping_runs(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    (sha1,) = host.install(bin_manager, supervisord, "app", breakable(host, "1"))
    host.flag("2", "fatal")
    bad = bin_manager.publish("app", breakable(host, "2"))
    assert host.run().returncode == 1
    assert host.entry("app")["history"][bad] == "err"
    assert host.run().returncode == 0  # known bad: skipped
    assert host.installed_sha("app") == sha1

    (host.flags / "2.fatal").unlink()  # the cause was outside the binary, and is fixed
    runs = [host.spawn() for _ in range(3)]  # cron keeps running meanwhile
    try:
        forgot = host.run("app", bad[:12], command="forget")
    finally:
        for run in runs:
            run.communicate(timeout=120)
    assert forgot.returncode == 0, forgot.stderr
    assert f"app@{bad[:12]}: quarantine lifted" in forgot.stdout
    assert all(run.returncode == 0 for run in runs)
    assert bad not in host.entry("app")["history"] or host.entry("app")["history"][bad] == "ok"
    result = host.run()
    assert result.returncode == 0, host.debug(result)
    assert host.installed_sha("app") == bad
    assert host.entry("app")["history"][bad] == "ok"

    again = host.run("app", "deadbeef", command="forget")
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "ansible-proxy: app: no quarantined version 'deadbeef' (quarantined: none)"
    )


def test_verbose_run_prints_off_a_terminal(bin_manager: BinManager, host: Host) -> None:
    bin_manager.publish("app", program("1"))
    host.write_manifest("app")
    result = subprocess.run(  # ssh without -t: stderr is a pipe
        host.argv("run", "-v"), env=host.env, capture_output=True, text=True, timeout=120,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "registered with the bin-manager" in result.stderr
    assert "app" in result.stderr


def test_store_keeps_what_a_rollback_needs_and_the_newest_few(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.env["STORE_KEEP"] = "1"
    shas = host.install(
        bin_manager, supervisord, "app", *(breakable(host, str(n)) for n in range(1, 6))
    )
    stored = sorted(p.name for p in (host.store_dir / "app").iterdir())
    # installed (5), its rollback target (4), and the newest other (3): 1 and 2 are gone.
    assert stored == sorted(shas[2:]), (stored, shas)
    assert "store: removed" in host.log()
    host.flag("5", "fatal")  # the inspector's rollback still finds the previous version
    wait_until(lambda: supervisord.state("app") == "FATAL", 60, "app FATAL")
    code, answer = host.check()
    row = host.service(answer, "app")
    assert (code, row["action"]) == (1, "rolled-back"), answer
    assert host.installed_sha("app") == shas[3]


def test_hold_taken_while_cron_runs_overlap_is_never_overridden(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.install(bin_manager, supervisord, "app", breakable(host, "1"))
    bin_manager.publish("app", breakable(host, "2"))
    runs = [host.spawn() for _ in range(3)]  # cron's runs, one of them upgrading now
    try:
        held = host.run("app", "--reason", "draining", command="hold")
    finally:
        for run in runs:
            run.communicate(timeout=120)
    assert held.returncode == 0, held.stderr
    assert all(run.returncode == 0 for run in runs)
    kept = host.installed_sha("app")  # whichever the race left: v1, or v2 finished first
    assert host.entry("app")["hold"] == "draining"
    assert host.entry("app")["version"] == kept  # the manifest tells the truth either way
    sha3 = bin_manager.publish("app", breakable(host, "3"))
    for _ in range(2):
        assert host.run().returncode == 0
        assert host.installed_sha("app") == kept  # no run after the hold touches it
    assert host.run("app", command="release").returncode == 0
    assert host.run().returncode == 0
    assert host.installed_sha("app") == sha3


def test_maintenance_of_an_unknown_binary_is_one_clear_error(host: Host) -> None:
    host.write_manifest("app")
    before = host.manifest_path.read_bytes()
    for command, args in (("hold", ["ap"]), ("release", ["ap"]), ("forget", ["ap", "a" * 64])):
        result = host.run(*args, command=command)
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"ansible-proxy: manifest {host.manifest_path}: no binary named 'ap'\n"
        )
    assert host.manifest_path.read_bytes() == before
