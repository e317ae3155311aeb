"""Fixtures for a real Prometheus (Debian package) on loopback and a tiny exporter.

`TestExporter` is a real HTTP server on 127.0.0.1 (support/loopback.py) serving the gauge
`ansible_proxy_test_broken{service=...}` that a test flips with `set()`. `Prometheus`
runs /usr/bin/prometheus (1 s scrape and evaluation) scraping it, with an alerting rule
per service, labelled `service=<name>`, that fires while its gauge is 1 (`for: 0s`).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.support.loopback import Exchange, Loopback
from tests.support.procs import LOOPBACK, Service, free_port, http_ok, wait_until

PROMETHEUS = Path("/usr/bin/prometheus")
GAUGE = "ansible_proxy_test_broken"
TEST_SERVICES = ("hello", "web")


class TestExporter:
    """A /metrics endpoint in a thread of the test process; `set()` flips a service."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = Loopback(self.serve, keep_alive=False)
        self.port = 0

    def serve(self, req: Exchange) -> None:
        req.reply(200, self.render().encode(), "text/plain; version=0.0.4")

    def set(self, service: str, value: int) -> None:
        with self._lock:
            self.values[service] = value

    def render(self) -> str:
        with self._lock:
            lines = [f"# TYPE {GAUGE} gauge"]
            lines += [f'{GAUGE}{{service="{s}"}} {v}' for s, v in sorted(self.values.items())]
        return "\n".join(lines) + "\n"

    def start(self) -> TestExporter:
        self.port = self.server.start().port
        return self

    def stop(self) -> None:
        self.server.stop()


class Prometheus:
    """/usr/bin/prometheus on 127.0.0.1:<free port>, its TSDB and config in `workdir`."""

    def __init__(self, workdir: Path, exporter: TestExporter, services: Sequence[str]) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.exporter = exporter
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        rules = workdir / "rules.yml"
        rules.write_text(_rules(services))
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules}\n"
            "scrape_configs:\n  - job_name: test\n"
            f"    static_configs:\n      - targets: ['{LOOPBACK}:{exporter.port}']\n"
        )
        argv = [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=warn",
        ]
        self.service = Service(argv, workdir / "prometheus.log", cwd=workdir)

    def start(self) -> Prometheus:
        self.service.start()

        def ready() -> bool:
            if not self.service.running():
                raise RuntimeError(f"prometheus exited:\n{self.service.log()[-3000:]}")
            return http_ok(f"{self.url}/-/ready")

        wait_until(ready, 30, f"prometheus on port {self.port}")
        return self

    def stop(self) -> None:
        self.service.stop()

    def firing(self, service: str) -> bool:
        """True when Prometheus itself answers that the service's alert is firing."""
        query = f'ALERTS{{alertstate="firing", service="{service}"}}'
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=2)
        return bool(response.json()["data"]["result"])

    def set_broken(self, service: str, broken: bool, wait: bool = True) -> None:
        """Flip the gauge; with `wait`, until Prometheus agrees (the alert fires or clears)."""
        self.exporter.set(service, 1 if broken else 0)
        if wait:
            state = "firing" if broken else "cleared"
            wait_until(lambda: self.firing(service) == broken, 30, f"alert {service} {state}")


def _rules(services: Sequence[str]) -> str:
    lines = ["groups:", "  - name: ansible-proxy-test", "    interval: 1s", "    rules:"]
    for service in services:
        lines += [
            "      - alert: TestServiceBroken",
            f'        expr: {GAUGE}{{service="{service}"}} == 1',
            "        for: 0s",
            "        labels:",
            f"          service: {service}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def test_exporter() -> Iterator[TestExporter]:
    exporter = TestExporter().start()
    try:
        yield exporter
    finally:
        exporter.stop()


@pytest.fixture
def prometheus(tmp_path: Path, test_exporter: TestExporter) -> Iterator[Prometheus]:
    """A real Prometheus with alert rules for TEST_SERVICES; stopped by PID, dir removed."""
    server = Prometheus(tmp_path / "prometheus", test_exporter, TEST_SERVICES)
    for service in TEST_SERVICES:
        test_exporter.set(service, 0)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
