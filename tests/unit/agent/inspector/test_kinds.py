"""The one list of check kinds: every kind is measured by its probe under its own name,
and shown in the table (its column), the JSON and the textfile; its manifest key is read
by the manifest, and a bad value is refused naming the key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.adapters.supervisor import Supervisor
from ansible_proxy.agent.inspector.check import ServiceResult
from ansible_proxy.agent.inspector.kinds import KINDS, check_service
from ansible_proxy.agent.inspector.output import render_json, render_table, render_textfile
from ansible_proxy.agent.inspector.probes import Probes
from ansible_proxy.agent.inspector.verdicts import Check, Health, Outcome, Remedy, Verdict
from ansible_proxy.agent.manifest import ManagedBinary, load_manifest
from ansible_proxy.client.transport import Client
from ansible_proxy.errors import ConfigError
from tests.support.procs import LOOPBACK, free_port

A = "a" * 64
# A value each manifest key refuses, and the words of the refusal after the key.
BAD_VALUES = {
    "port": ("70000", "70000 is not a TCP port"),
    "healthUrl": ("ftp://host/", "'ftp://host/' is not an http:// or https:// URL"),
    "image": ("'Not An Image'", ""),
    "prometheusQuery": ('""', "must be a non-empty string"),
}


def one_of_each() -> ServiceResult:
    """A service every kind measured, each with a detail of its own."""
    checks = tuple(Check(k.name, Outcome.HEALTHY, f"{k.name} detail") for k in KINDS)
    return ServiceResult("svc", "svc", A, Health(checks), Verdict(Remedy.NONE), "none")


def test_the_names_and_columns_are_one_each() -> None:
    assert len({k.name for k in KINDS}) == len({k.column for k in KINDS}) == len(KINDS)
    assert KINDS[0].name == "process"  # first: a STOPPED program ends the check
    assert "http" in {k.name for k in KINDS}


def test_every_kind_has_its_column_in_the_table() -> None:
    header, row = render_table([one_of_each()]).splitlines()
    columns = [k.column for k in KINDS]
    assert header.split() == ["SERVICE", "VERSION", *columns, "RESULT", "ACTION"]
    starts = [header.index(f"  {c} ") + 2 for c in columns] + [header.index("  RESULT") + 2]
    for kind, start, end in zip(KINDS, starts, starts[1:], strict=False):
        assert row[start:end].strip() == f"healthy: {kind.name} detail"


def test_every_kind_is_in_the_json_and_the_textfile(tmp_path: Path) -> None:
    answer = json.loads(render_json([one_of_each()], 0))
    assert list(answer["services"][0]["checks"]) == [k.name for k in KINDS]
    text = render_textfile([one_of_each()], State(tmp_path / "state.json"), 1.0)
    for kind in KINDS:
        assert f'ansible_proxy_check_healthy{{service="svc",check="{kind.name}"}} 1\n' in text
    assert "# TYPE ansible_proxy_check_healthy gauge" in text


@pytest.mark.parametrize("kind", [k for k in KINDS if k.manifest_key], ids=lambda k: k.name)
def test_every_manifest_key_is_read_by_the_manifest(tmp_path: Path, kind: Any) -> None:
    assert kind.manifest_key in BAD_VALUES, "a new key needs a bad value here"
    value, words = BAD_VALUES[kind.manifest_key]
    path = tmp_path / "m.yaml"
    path.write_text(f"binaries:\n  - binaryName: hello\n    {kind.manifest_key}: {value}\n")
    with pytest.raises(ConfigError, match=rf"binaries\[0\]: .*{kind.manifest_key}.*{words}"):
        load_manifest(path)


class Answers:
    """A real HTTP server on loopback: GET /healthz answers 200; Prometheus's query API
    an empty vector (no alert firing)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"ok"
                if self.path.startswith("/api/v1/query"):
                    body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def answers() -> Iterator[Answers]:
    server = Answers()
    try:
        yield server
    finally:
        server.close()


def test_each_probe_measures_its_kind_under_its_name(answers: Answers, tmp_path: Path) -> None:
    """No supervisord (the process looked for by name), a closed port, the health URL and
    Prometheus on loopback: one check of each kind, in the list's order."""
    entry = ManagedBinary(
        "no-such-service",
        "no-such-service",
        port=free_port(),
        health_url=f"http://{{host}}:{answers.port}/healthz",
    )
    url = f"http://{LOOPBACK}:{answers.port}"
    with Client([url], timeout=2) as http:
        probes = Probes(
            Supervisor(f"unix://{tmp_path}/no-supervisord.sock", timeout=2),
            http,
            url,
            'ALERTS{service="{service}"}',
        )
        health = check_service(probes, entry)
    measured = [k.name for k in KINDS if k.name != "image"]  # no container engine here
    assert [c.name for c in health.checks] == measured
    by_name = {c.name: c for c in health.checks}
    assert by_name["process"].outcome == Outcome.UNHEALTHY  # no process of that name
    assert by_name["port"].outcome == Outcome.UNHEALTHY  # refused
    assert (by_name["http"].outcome, by_name["http"].detail) == (Outcome.HEALTHY, "HTTP 200")
    assert by_name["alerts"].outcome == Outcome.HEALTHY
