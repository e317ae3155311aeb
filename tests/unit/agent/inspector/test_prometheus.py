"""adapters/prometheus.py against a real loopback HTTP server answering what a test sets.

Anything but a well-formed answer must be "unknown" (firing is None), never healthy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_proxy.agent.adapters.prometheus import DEFAULT_QUERY, query_alerts, render_query
from ansible_proxy.agent.inspector.check import run_check
from ansible_proxy.client.config import build_config
from ansible_proxy.client.logs import Log
from ansible_proxy.client.transport import Client
from tests.support.loopback import Exchange, Loopback
from tests.support.procs import LOOPBACK, free_port


class Answers:
    """A one-route HTTP server: every GET gets (status, body); queries are recorded."""

    def __init__(self) -> None:
        self.status, self.body = 200, b""
        self.server = Loopback(self.answer, keep_alive=False).start()
        self.url = self.server.url

    def answer(self, req: Exchange) -> None:
        req.reply(self.status, self.body)

    @property
    def queries(self) -> list[str]:
        asked = [urlsplit(seen.path).query for seen in self.server.received()]
        return [parse_qs(query).get("query", [""])[0] for query in asked]

    @property
    def authorization(self) -> list[str | None]:
        return [seen.headers.get("Authorization") for seen in self.server.received()]

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def answers() -> Iterator[Answers]:
    server = Answers()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(timeout=2) as http:
        yield http


def vector(*alertnames: str) -> bytes:
    samples = ",".join(
        f'{{"metric":{{"alertname":"{n}","service":"hello"}},"value":[1,"1"]}}' for n in alertnames
    )
    return f'{{"status":"success","data":{{"resultType":"vector","result":[{samples}]}}}}'.encode()


def test_render_query_substitutes_and_escapes_the_service() -> None:
    assert render_query(DEFAULT_QUERY, "hello") == 'ALERTS{alertstate="firing", service="hello"}'
    assert render_query('up{job="{service}"} == 0', 'a"b') == 'up{job="a\\"b"} == 0'


def test_empty_vector_is_no_alert_and_samples_are_firing(answers: Answers, client: Client) -> None:
    answers.body = vector()
    quiet = query_alerts(client, answers.url, "Q1")
    assert (quiet.firing, quiet.detail) == (False, "no firing alert")
    answers.body = vector("Down", "Slow", "Down")
    loud = query_alerts(client, answers.url + "/", "Q2")
    assert (loud.firing, loud.detail) == (True, "firing: Down, Slow")
    assert answers.queries == ["Q1", "Q2"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"internal error"),
        (400, b'{"status":"error","errorType":"bad_data","error":"parse error"}'),
        (200, b"<html>not prometheus</html>"),
        (200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}'),
        (200, b'{"status":"success","data":{"resultType":"vector"}}'),
        (200, b"[1, 2, 3]"),
    ],
)
def test_errors_and_garbage_are_unknown(
    answers: Answers, client: Client, status: int, body: bytes
) -> None:
    answers.status, answers.body = status, body
    assert query_alerts(client, answers.url, "Q").firing is None


def test_unreachable_is_unknown(client: Client) -> None:
    answer = query_alerts(client, f"http://{LOOPBACK}:{free_port()}", "Q")
    assert answer.firing is None
    assert "unreachable" in answer.detail


def test_check_asks_per_service_and_never_sends_the_api_token(
    answers: Answers, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(
        '{"binaries": [{"serviceName": "svc-a", "binaryName": "a"},'
        ' {"binaryName": "b", "prometheusQuery": "up{job=\\"{service}\\"} == 0"}]}'
    )
    env = {
        "BIN_MANAGER_API": f"http://{LOOPBACK}:{free_port()}/api/v1",
        "BIN_MANAGER_TOKEN": "agent-secret-token",
        "PROMETHEUS_URL": answers.url,
        "BIN_MANIFESTS": str(manifest),
        "STORE_DIR": str(tmp_path / "lib" / "store"),
        "LOCK_DIR": str(tmp_path / "locks"),
        "BIN_DIR": str(tmp_path / "bin"),
        "SUPERVISOR_URL": f"unix://{tmp_path}/no-supervisor.sock",
    }
    answers.body = vector()
    results, _, _ = run_check(build_config({}, env, {}, "host"), Log(None))
    assert answers.queries == ['ALERTS{alertstate="firing", service="svc-a"}', 'up{job="b"} == 0']
    assert answers.authorization == [None, None]
    assert [r.health.checks[-1].detail for r in results] == ["no firing alert"] * 2
    assert (tmp_path / "lib" / "inspector-state.json").exists()
