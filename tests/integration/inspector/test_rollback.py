"""`ansible-proxy check` finds a bad version and rolls it back one step (docs/inspector.md)."""

from __future__ import annotations

import json

from tests.integration.inspector.conftest import Host, breakable, progress, reported_sha
from tests.support.procs import free_port, port_open, wait_until
from tests.support.prometheus import Prometheus
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def test_firing_alert_rolls_back_after_check_failures_runs(
    bin_manager: BinManager, supervisord: Supervisord, watched_host: Host, prometheus: Prometheus
) -> None:
    host = watched_host
    sha1, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    code, answer = host.check()
    assert code == 0, answer
    assert host.service(answer, "hello")["outcome"] == "healthy"

    prometheus.set_broken("hello", True)
    code, answer = host.check()
    row = host.service(answer, "hello")
    assert (code, row["outcome"], row["action"], row["failures"]) == (1, "unhealthy", "wait", 1)
    assert row["checks"]["alerts"]["outcome"] == "unhealthy"
    assert host.installed_sha("hello") == sha2  # one bad run is not enough (flap protection)

    pid_bad = supervisord.pid("hello")
    result = host.run("--json", command="check")  # as cron runs it: stderr is mailed
    code, answer = result.returncode, json.loads(result.stdout)
    row = host.service(answer, "hello")
    assert (code, row["action"], row["rollbackTo"]) == (1, "rolled-back", sha1), answer
    assert result.stderr.startswith(f"ansible-proxy check: hello@{sha2[:12]}: rolled-back: ")
    assert host.installed_sha("hello") == sha1
    assert supervisord.state("hello") == "RUNNING"
    assert supervisord.pid("hello") != pid_bad
    entry = host.entry("hello")
    assert entry["version"] == sha1
    assert entry["history"] == {sha1: "ok", sha2: "err"}
    assert progress(bin_manager)[-1] == (sha2, "failed")
    assert reported_sha(bin_manager, "hello") == sha1

    # The bad version is never auto-installed again.
    again = host.run()
    assert again.returncode == 0, host.debug(again)
    assert host.installed_sha("hello") == sha1


def test_closed_port_rolls_back(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    port = free_port()
    sha1, sha2 = host.install(
        bin_manager,
        supervisord,
        "web",
        breakable(host, "1", port),
        breakable(host, "2", port),
        port=port,
    )
    host.flag("2", "close")
    wait_until(lambda: not port_open(port), 10, "version 2 to close its port")
    codes = []
    for _ in range(2):
        code, answer = host.check()
        codes.append(code)
    row = host.service(answer, "web")
    assert codes == [1, 1]
    assert row["checks"]["port"]["outcome"] == "unhealthy"
    assert row["action"] == "rolled-back", answer
    assert host.installed_sha("web") == sha1
    assert supervisord.state("web") == "RUNNING"
    assert port_open(port)
    assert host.entry("web")["history"][sha2] == "err"

    code, answer = host.check()
    assert code == 0, answer


def test_fatal_program_is_rolled_back_at_once(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    sha1, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    host.flag("2", "fatal")
    wait_until(lambda: supervisord.state("hello") == "FATAL", 30, "hello FATAL")

    code, answer = host.check()
    row = host.service(answer, "hello")
    assert (code, row["action"]) == (1, "rolled-back"), answer
    assert row["checks"]["process"]["detail"].startswith("FATAL")
    assert host.installed_sha("hello") == sha1
    assert supervisord.state("hello") == "RUNNING"
    assert host.entry("hello")["history"][sha2] == "err"
    state = json.loads(host.state_file.read_text())
    assert state["rollbacks"] == {"hello": 1}
    assert state["failures"]["hello"] == 0


def test_rolled_back_to_version_failing_too_is_left_for_a_person(
    bin_manager: BinManager, supervisord: Supervisord, watched_host: Host, prometheus: Prometheus
) -> None:
    host = watched_host
    host.env["CHECK_FAILURES"] = "1"
    sha1, sha2, sha3 = host.install(
        bin_manager,
        supervisord,
        "hello",
        breakable(host, "1"),
        breakable(host, "2"),
        breakable(host, "3"),
    )
    prometheus.set_broken("hello", True)  # the alert fires whatever the version
    code, answer = host.check()
    assert (code, host.service(answer, "hello")["action"]) == (1, "rolled-back"), answer
    assert host.installed_sha("hello") == sha2

    for _ in range(2):
        code, answer = host.check()
        row = host.service(answer, "hello")
        assert (code, row["outcome"], row["action"]) == (1, "unhealthy", "left-for-a-person")
    assert host.installed_sha("hello") == sha2
    entry = host.entry("hello")
    assert entry["version"] == sha2
    assert entry["history"] == {sha1: "ok", sha2: "ok", sha3: "err"}
    assert supervisord.state("hello") == "RUNNING"

    prometheus.set_broken("hello", False)
    code, answer = host.check()
    assert code == 0, answer


def test_never_upgraded_service_is_reported_untouched(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    (sha1,) = host.install(bin_manager, supervisord, "hello", breakable(host, "1"))
    host.flag("1", "fatal")
    wait_until(lambda: supervisord.state("hello") == "FATAL", 30, "hello FATAL")
    code, answer = host.check()
    row = host.service(answer, "hello")
    assert (code, row["action"]) == (1, "no-rollback-path"), answer
    assert host.installed_sha("hello") == sha1
    assert host.entry("hello")["history"] == {sha1: "ok"}
