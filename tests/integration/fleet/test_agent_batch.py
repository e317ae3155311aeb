"""The agent polls every bin with one GET /bins, and falls back against an original server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.agent import Agent, program
from tests.support.nginx import HIDE_BATCH, NginxProxy
from tests.support.procs import wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def _requests(bm: BinManager, since: int) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request the server logged after byte `since`."""
    seen = []
    for line in bm.service.log()[since:].splitlines():
        start = line.find('{"ts"')
        if start >= 0:
            entry = json.loads(line[start:])
            seen.append((entry["method"], entry["path"], entry["status"]))
    return seen


def _mark(bm: BinManager) -> int:
    """A log offset after every earlier request's line: a /healthz is sent, and waited for
    in the log (the server logs a request just after answering it)."""
    before = _requests(bm, 0).count(("GET", "/healthz", 200))
    with bm.client() as http:
        assert http.get(f"{bm.url}/healthz").status_code == 200
    wait_until(
        lambda: _requests(bm, 0).count(("GET", "/healthz", 200)) > before, 30, "the access log"
    )
    return len(bm.service.log())


def _requests_since(bm: BinManager, mark: int) -> list[tuple[str, str, int]]:
    """The agent's requests logged after `mark`, once every request so far is in the log
    (the test's own: /healthz, and an admin call whose line a loaded server may write
    after the mark's, are not the agent's)."""
    _mark(bm)
    return [
        seen
        for seen in _requests(bm, mark)
        if seen[1] != "/healthz" and not seen[1].startswith("/api/v1/admin/")
    ]


def _installed_host(agent: Agent, bm: BinManager, supervisord: Supervisord) -> dict[str, str]:
    shas = {name: bm.publish(name, program(name)) for name in ("one", "two")}
    agent.write_manifest("one", "two")
    for name in shas:
        supervisord.add_program(name, agent.binary(name))
    first = agent.run()
    assert first.returncode == 0, agent.debug(first)
    assert {name: agent.installed_sha(name) for name in shas} == shas
    return shas


def test_noop_tick_makes_two_requests(
    bin_manager: BinManager, supervisord: Supervisord, tmp_path: Path
) -> None:
    # enrolled on the first tick: later ticks send the node token, no more enrolment
    agent = Agent(
        tmp_path / "host", bin_manager.api, supervisord.socket_url, bin_manager.enrolment_token
    )
    shas = _installed_host(agent, bin_manager, supervisord)

    mark = _mark(bin_manager)
    again = agent.run()
    assert again.returncode == 0, agent.debug(again)
    assert _requests_since(bin_manager, mark) == [
        ("GET", "/api/v1/keepalive", 200),
        ("GET", "/api/v1/bins", 304),
    ]

    new = bin_manager.publish("two", program("two, version 2"))
    mark = _mark(bin_manager)
    upgrade = agent.run()
    assert upgrade.returncode == 0, agent.debug(upgrade)
    assert agent.installed_sha("two") == new
    assert agent.installed_sha("one") == shas["one"]
    seen = _requests_since(bin_manager, mark)
    assert seen[:2] == [("GET", "/api/v1/keepalive", 200), ("GET", "/api/v1/bins", 200)]
    assert not [path for _, path, _ in seen if path.startswith("/api/v1/bins/one")]


def test_agent_falls_back_to_per_bin_polls(
    bin_manager: BinManager, supervisord: Supervisord, tmp_path: Path
) -> None:
    """Behind a proxy answering 404 for /api/v1/bins, as an original-design server does."""
    nginx = NginxProxy(
        tmp_path / "nginx", [bin_manager.port], bin_manager.data_dir / "artifacts", HIDE_BATCH
    ).start()
    try:
        agent = Agent(
            tmp_path / "host", nginx.api, supervisord.socket_url, bin_manager.enrolment_token
        )
        shas = _installed_host(agent, bin_manager, supervisord)
        mark = _mark(bin_manager)
        again = agent.run()
        assert again.returncode == 0, agent.debug(again)
        assert sorted(_requests_since(bin_manager, mark)) == [
            ("GET", "/api/v1/bins/one", 200),
            ("GET", "/api/v1/bins/two", 200),
            ("GET", "/api/v1/keepalive", 200),
        ]
        assert {name: agent.installed_sha(name) for name in shas} == shas
        batch_polls = [line for line in nginx.access_log().splitlines() if "/api/v1/bins?" in line]
        assert len(batch_polls) == 2  # once per tick, each answered 404 by the "old server"
        assert all('" 404 ' in line for line in batch_polls)
    finally:
        nginx.stop()
