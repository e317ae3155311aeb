"""Deadlines of `ansible-proxy check`: a hung supervisord or a Prometheus answering a byte
at a time makes the check "unknown" within its timeout (never a rollback), and a check
started while another runs is skipped at once instead of piling up behind it."""

from __future__ import annotations

import fcntl
import json

from tests.integration.inspector.conftest import Host, breakable
from tests.support.loopback import Loopback, drip
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

HANG = 30  # seconds: a check still running by then hangs as before the deadlines; killed
SLACK = 4  # seconds allowed past a deadline: start-up, the other checks, a busy machine
FIRING = (
    b'{"status":"success","data":{"resultType":"vector","result":'
    b'[{"metric":{"alertname":"TestServiceBroken","service":"hello"},"value":[0,"1"]}]}}'
)


def test_hung_supervisord_is_unknown_within_supervisor_timeout_and_never_rolls_back(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.env["CHECK_FAILURES"] = "1"  # one unhealthy check would roll v2 back to v1
    _, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    with supervisord.stopped():
        result, elapsed = host.timed("check", "--json", limit=HANG, SUPERVISOR_TIMEOUT="2")
    assert result.returncode == 3, host.debug(result)  # only unknowns
    assert elapsed < 2 + SLACK + 2, host.debug(result)
    row = host.service(json.loads(result.stdout), "hello")
    assert (row["outcome"], row["action"]) == ("unknown", "none"), row
    assert row["checks"]["process"]["outcome"] == "unknown"
    assert (
        f"supervisor {supervisord.socket_url}: info hello: no answer within 2 s "
        "(SUPERVISOR_TIMEOUT; is supervisord stopped or hung?)"
    ) == row["checks"]["process"]["detail"]
    assert host.installed_sha("hello") == sha2
    assert host.entry("hello")["version"] == sha2
    assert "err" not in host.entry("hello")["history"].values()

    code, answer = host.check()  # supervisord answers again
    assert code == 0, answer
    assert host.service(answer, "hello")["checks"]["process"]["outcome"] == "healthy"


def test_prometheus_dripping_its_answer_is_unknown_within_prometheus_timeout(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.env["CHECK_FAILURES"] = "1"  # the alert, if waited for, would roll v2 back at once
    _, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    # One byte every 2 s, status line included.
    with Loopback(drip(FIRING), keep_alive=False) as prometheus:
        result, elapsed = host.timed(
            "check", "--json", limit=HANG, PROMETHEUS_URL=prometheus.url, PROMETHEUS_TIMEOUT="2"
        )
    assert result.returncode == 3, host.debug(result)
    assert elapsed < 2 + SLACK + 2, host.debug(result)
    row = host.service(json.loads(result.stdout), "hello")
    assert (row["outcome"], row["action"]) == ("unknown", "none"), row
    assert row["checks"]["alerts"] == {
        "outcome": "unknown",
        "detail": f"prometheus {prometheus.url}/api/v1/query: no answer within 2 s "
        "(PROMETHEUS_TIMEOUT)",
    }
    assert row["checks"]["process"]["outcome"] == "healthy"
    assert host.installed_sha("hello") == sha2
    assert "err" not in host.entry("hello")["history"].values()


def test_check_while_another_holds_the_lock_is_skipped_at_once(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    host.install(bin_manager, supervisord, "hello", breakable(host, "1"))
    lock = host.lock_dir / ".inspector.lock"
    with lock.open("a") as running:  # what a check still running holds
        fcntl.flock(running, fcntl.LOCK_EX)
        result, elapsed = host.timed("check", "--json", limit=HANG)
    assert result.returncode == 75, host.debug(result)
    assert elapsed < 5, host.debug(result)
    assert (result.stdout, result.stderr) == ("", "")  # a retry under cron: no mail
    assert f"another ansible-proxy check holds {lock}: skipped this time" in host.log()
    assert not host.state_file.exists()  # the skipped check changed nothing

    code, answer = host.check()  # the first one done: checks run again
    assert code == 0, answer
    assert host.state_file.exists()
