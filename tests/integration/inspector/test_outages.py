"""Outages around the inspector: Prometheus down (unknown, never a rollback) and the
bin-manager down (the rollback still happens; it is reported once the API is back)."""

from __future__ import annotations

import json

from tests.integration.inspector.conftest import Host, breakable, progress, reported_sha
from tests.support.prometheus import Prometheus
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def test_prometheus_stopped_is_unknown_and_never_rolls_back(
    bin_manager: BinManager, supervisord: Supervisord, watched_host: Host, prometheus: Prometheus
) -> None:
    host = watched_host
    _, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    prometheus.stop()
    textfile = host.root / "inspector.prom"
    for _ in range(3):  # more than CHECK_FAILURES runs
        code, answer = host.check("--textfile", str(textfile))
        row = host.service(answer, "hello")
        assert (code, row["outcome"], row["action"]) == (3, "unknown", "none"), answer
        assert row["checks"]["alerts"]["outcome"] == "unknown"
        assert "unreachable" in row["checks"]["alerts"]["detail"]
        assert row["checks"]["process"]["outcome"] == "healthy"
    assert host.installed_sha("hello") == sha2
    assert host.entry("hello")["history"][sha2] == "ok"
    metrics = textfile.read_text()
    assert 'ansible_proxy_service_healthy{service="hello"} -1' in metrics
    assert 'ansible_proxy_rollbacks_total{service="hello"} 0' in metrics
    assert "ansible_proxy_last_check_timestamp_seconds " in metrics


def test_api_down_rollback_happens_and_is_reported_later(
    bin_manager: BinManager, supervisord: Supervisord, watched_host: Host, prometheus: Prometheus
) -> None:
    host = watched_host
    sha1, sha2 = host.install(
        bin_manager, supervisord, "hello", breakable(host, "1"), breakable(host, "2")
    )
    bin_manager.stop()
    prometheus.set_broken("hello", True)
    for _ in range(2):
        code, answer = host.check()
    assert (code, host.service(answer, "hello")["action"]) == (1, "rolled-back"), answer
    assert host.installed_sha("hello") == sha1
    assert supervisord.state("hello") == "RUNNING"
    assert host.entry("hello")["history"][sha2] == "err"
    assert json.loads(host.state_file.read_text())["pending"]["hello"][0]["bad"] == sha2

    bin_manager.start()
    prometheus.set_broken("hello", False)
    code, answer = host.check()
    assert code == 0, answer
    assert progress(bin_manager).count((sha2, "failed")) == 1
    assert reported_sha(bin_manager, "hello") == sha1
    assert "hello" not in json.loads(host.state_file.read_text()).get("pending", {})

    code, answer = host.check()  # reported once, not again
    assert code == 0, answer
    assert progress(bin_manager).count((sha2, "failed")) == 1


def test_per_entry_query_table_and_textfile(
    bin_manager: BinManager, supervisord: Supervisord, watched_host: Host, prometheus: Prometheus
) -> None:
    host = watched_host
    (sha1,) = host.install(bin_manager, supervisord, "hello", breakable(host, "1"))
    doc = host.manifest()
    doc["binaries"][0]["prometheusQuery"] = 'ALERTS{alertstate="firing", service="web"}'
    host.manifest_path.write_text(json.dumps(doc, indent=2))
    prometheus.set_broken("web", True)  # only the overriding query sees this alert

    textfile = host.root / "inspector.prom"
    table = host.run("--textfile", str(textfile), command="check")
    assert table.returncode == 1, host.debug(table)
    assert "firing: TestServiceBroken" in table.stdout
    assert "no-rollback-path" in table.stdout
    assert 'ansible_proxy_service_healthy{service="hello"} 0' in textfile.read_text()
    assert host.installed_sha("hello") == sha1

    assert host.run().returncode == 0  # the agent keeps the operator's extra key
    assert host.entry("hello")["prometheusQuery"] == doc["binaries"][0]["prometheusQuery"]
