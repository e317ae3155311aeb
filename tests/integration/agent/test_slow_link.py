"""Downloads over a real slow link (tc on a veth pair, tests/support/slow_link.py): a
release that takes 20 s and more to arrive installs in one run, straight from the
bin-manager and through the cluster's nginx cache, its progress reports going out beside
the download; a link that stops dead is still given up after DOWNLOAD_STALL_TIMEOUT.

The bin-manager sits behind the link with node credentials required, as operators run it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import Agent, sha256
from tests.support.nginx import CacheNginx
from tests.support.procs import wait_until
from tests.support.server import BinManager
from tests.support.slow_link import SERVER_ADDRESS, SlowLink
from tests.support.supervisor import Supervisord

# 40 MiB at 16 Mbit/s (2 MB/s): about 21 s on the link, four progress reports and more.
SIZE = 40 * 2**20


def big_program(tag: str) -> bytes:
    """A real program (sh execs a sleeping python at once) padded with SIZE random bytes
    that sh never reads: as incompressible as a real binary."""
    head = f"#!/bin/sh\n# version {tag}\nexec {sys.executable} -c 'import time; time.sleep(3600)'\n"
    return head.encode() + os.urandom(SIZE)


@pytest.fixture
def far_server(tmp_path: Path, slow_link: SlowLink) -> Iterator[BinManager]:
    """A bin-manager on the far side of the slow link, node credentials required."""
    server = BinManager(
        tmp_path / "bin-manager", host=SERVER_ADDRESS, netns=slow_link.netns, node_auth="required"
    )
    try:
        yield server.start()
    finally:
        server.stop()


def host(tmp_path: Path, api: str, server: BinManager, supervisord: Supervisord) -> Agent:
    agent = Agent(tmp_path / "host", api, supervisord.socket_url, server.enrolment_token)
    agent.env["ALLOW_INSECURE_HTTP"] = "1"  # plain HTTP on the test's own link
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    return agent


def reports(server: BinManager, sha: str) -> list[str]:
    """The statuses this node reported for release `sha`, oldest first."""
    detail: dict[str, Any] = server.admin_get("/nodes/host-001").json()["data"]
    return [p["status"] for p in reversed(detail["progress"]) if p["targetHash"] == sha]


def assert_installed_in_one_run(agent: Agent, server: BinManager, content: bytes) -> None:
    sha = server.publish("app", content, timeout=120)
    started = time.monotonic()
    result = agent.run()
    took = time.monotonic() - started
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha
    log = agent.log()
    assert "progress report failed" not in log, log
    assert "resuming" not in log, log
    # The link really was slow (else this test proves nothing): reports went out during it.
    assert took > 15, f"the download took {took:.1f} s: the link is not shaped"
    statuses = reports(server, sha)
    assert statuses[-1] == "success", statuses
    assert "failed" not in statuses
    assert statuses.count("in_progress") >= 3, statuses  # the first, then one every 5 s


def test_a_download_of_20_s_installs_in_one_run(
    tmp_path: Path, far_server: BinManager, supervisord: Supervisord
) -> None:
    agent = host(tmp_path, far_server.api, far_server, supervisord)
    assert_installed_in_one_run(agent, far_server, big_program("1"))
    supervisord.wait_running("app")


def test_a_download_of_20_s_through_the_nginx_cache_installs_in_one_run(
    tmp_path: Path, far_server: BinManager, supervisord: Supervisord
) -> None:
    # The cache near the hosts, the bin-manager far: as docs/security.md tells a host with
    # protected downloads, both BIN_MANAGER_API and DOWNLOAD_BASE_URL name the cache.
    cache = CacheNginx(tmp_path / "nginx", far_server.url).start()
    try:
        agent = host(tmp_path, f"{cache.url}/api/v1", far_server, supervisord)
        assert_installed_in_one_run(agent, far_server, big_program("1"))
        log = (tmp_path / "nginx" / "access.log").read_text()
        assert "/api/v1/download/app?sha256=" in log  # it came through the cache
    finally:
        cache.stop()


def test_a_link_that_stops_dead_is_given_up_then_resumed(
    tmp_path: Path, slow_link: SlowLink, far_server: BinManager, supervisord: Supervisord
) -> None:
    agent = host(tmp_path, far_server.api, far_server, supervisord)
    content = big_program("1")
    sha = far_server.publish("app", content, timeout=120)
    part = agent.store_dir / "app" / f".{sha}.part"
    tick = agent.spawn(DOWNLOAD_STALL_TIMEOUT="4", HTTP_TIMEOUT="5")
    try:
        wait_until(lambda: part.exists() and part.stat().st_size > 4 * 2**20, 60, "4 MiB")
        slow_link.stall()
        out, err = tick.communicate(timeout=120)
    finally:
        if tick.poll() is None:
            tick.kill()
            tick.communicate()
    assert tick.returncode == 75, f"{out}\n{err}\n{agent.log()}"
    assert "stalled: less than 64 KiB in 4 s (DOWNLOAD_STALL_TIMEOUT)" in agent.log()
    kept = part.stat().st_size
    assert 4 * 2**20 < kept < len(content)  # the partial file is kept for the next tick
    assert agent.installed_sha("app") is None

    slow_link.throttle("16mbit")
    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    assert agent.installed_sha("app") == sha256(content) == sha
    resumed = [
        line
        for line in far_server.service.log().splitlines()
        if '"path": "/api/v1/download/app"' in line and '"status": 206' in line
    ]
    assert resumed, "the next tick did not resume the partial file with a Range request"
