"""A service that is not a supervisor program: checked by process name, never rolled back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.agent import Agent
from tests.support.procs import LOOPBACK, Service, free_port, wait_until
from tests.support.supervisor import Supervisord

A, B = "a" * 64, "b" * 64


def test_process_by_name_when_supervisor_has_no_such_program(
    tmp_path: Path, supervisord: Supervisord
) -> None:
    agent = Agent(
        tmp_path / "host", f"http://{LOOPBACK}:{free_port()}/api/v1", supervisord.socket_url
    )
    name = "lonely-svc"
    agent.write_manifest(name)
    doc = agent.manifest()
    doc["binaries"][0].update(version=B, history={A: "ok", B: "ok"}, upgradePath={B: A})
    agent.manifest_path.write_text(json.dumps(doc))
    script = agent.bin_dir / name
    script.write_text("import time\ntime.sleep(600)\n")
    before = agent.manifest_path.read_bytes()

    proc = Service([sys.executable, str(script)], tmp_path / "lonely.log").start()
    try:
        wait_until(lambda: "process pid" in _process(agent), 10, "the process to be seen")
        result = agent.run("--json", command="check")
        assert result.returncode == 0, result.stderr
    finally:
        proc.stop()

    result = agent.run("--json", command="check", CHECK_FAILURES="1")
    assert result.returncode == 1, result.stderr
    row = json.loads(result.stdout)["services"][0]
    assert row["checks"]["process"]["outcome"] == "unhealthy"
    assert "no supervisor program" in row["checks"]["process"]["detail"]
    assert row["action"] == "not-supervised"
    assert agent.manifest_path.read_bytes() == before


def _process(agent: Agent) -> str:
    result = agent.run("--json", command="check")
    detail: str = json.loads(result.stdout)["services"][0]["checks"]["process"]["detail"]
    return detail
