"""What `check` shows and keeps: table, JSON, textfile metrics, queued reports."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_proxy.agent.adapters.engine import RunningImage
from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.inspector.check import ServiceResult
from ansible_proxy.agent.inspector.output import render_json, render_table, render_textfile
from ansible_proxy.agent.inspector.report import queue_report
from ansible_proxy.agent.inspector.verdicts import Check, Health, Outcome, Remedy, Verdict

A = "a" * 64


def results() -> list[ServiceResult]:
    ok = Health((Check("process", Outcome.HEALTHY, "RUNNING pid 7"),))
    bad = Health(
        (
            Check("process", Outcome.HEALTHY, "RUNNING pid 8"),
            Check("port", Outcome.UNHEALTHY, "8080 refuses connections"),
            Check("alerts", Outcome.UNKNOWN, "prometheus: unreachable"),
        )
    )
    return [
        ServiceResult("hello", "hello", A, ok, Verdict(Remedy.NONE), "none"),
        ServiceResult(
            'we"b', "web", A, bad, Verdict(Remedy.ROLL_BACK, A, 2), "rolled-back", "to aaaa"
        ),
    ]


def test_textfile_has_the_three_metrics(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    state.set("rollbacks", 'we"b', 3)
    text = render_textfile(results(), state, 1700000000.5)
    assert 'ansible_proxy_service_healthy{service="hello"} 1\n' in text
    assert 'ansible_proxy_service_healthy{service="we\\"b"} 0\n' in text
    assert 'ansible_proxy_rollbacks_total{service="hello"} 0\n' in text
    assert 'ansible_proxy_rollbacks_total{service="we\\"b"} 3\n' in text
    assert text.endswith("ansible_proxy_last_check_timestamp_seconds 1700000000.5\n")
    assert "# TYPE ansible_proxy_rollbacks_total counter" in text


def test_json_and_table_show_each_check_and_the_action() -> None:
    answer = json.loads(render_json(results(), 1))
    assert answer["exitCode"] == 1
    web = answer["services"][1]
    assert web["outcome"] == "unhealthy"
    assert web["checks"]["port"] == {"outcome": "unhealthy", "detail": "8080 refuses connections"}
    assert (web["action"], web["rollbackTo"], web["failures"]) == ("rolled-back", A, 2)
    table = render_table(results())
    for text in ("SERVICE", "hello", "8080 refuses connections", "rolled-back: to aaaa"):
        assert text in table


def test_pending_reports_survive_in_the_state_file(tmp_path: Path) -> None:
    state = State(tmp_path / "inspector-state.json")
    queue_report(state, "hello", A, "b" * 64, 12, "inspector: port: 8080 refuses connections")
    state.save()
    again = State(tmp_path / "inspector-state.json")
    assert again.get("pending", "hello") == [
        {
            "bad": A,
            "running": "b" * 64,
            "seconds": 12,
            "reason": "inspector: port: 8080 refuses connections",
            "cause": "release",  # the inspector's verdict: the release's own failure
        }
    ]


def test_json_and_table_say_which_image_an_image_entry_runs() -> None:
    seen = RunningImage("web", "f" * 64, ("b" * 64,), "localhost/web:v1")
    image = Check("image", Outcome.UNHEALTHY, "container web runs localhost/web:v1 (…)")
    health = Health((Check("process", Outcome.HEALTHY, "RUNNING pid 9"), image), running=seen)
    web = ServiceResult(
        "web", "web", A, health, Verdict(Remedy.WAIT, "b" * 64, 1), "wait", image="localhost/web"
    )
    hello, _ = results()
    answer = json.loads(render_json([hello, web], 1))
    assert answer["services"][0]["runningImage"] is None  # a binary
    assert answer["services"][1]["runningImage"] == {
        "container": "web",
        "id": "f" * 64,
        "release": "b" * 64,  # not the installed one: the release that image is
        "tag": "localhost/web:v1",
    }
    assert answer["services"][1]["checks"]["image"]["outcome"] == "unhealthy"
    header, *rows = render_table([hello, web]).splitlines()
    assert header.split()[:6] == ["SERVICE", "VERSION", "PROCESS", "PORT", "HTTP", "IMAGE"]
    assert "unhealthy: container web runs localhost/web:v1" in rows[-1]
