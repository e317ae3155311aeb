"""The fleet page tells which nodes run another agent than the published one (issue 17)."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import login, shot
from tests.support.server import BinManager


def _node(http: httpx.Client, api: str, name: str, arch: str, agent_sha: str | None) -> None:
    info = {"cpuArch": arch, "osRelease": "Debian 11", "nodeName": name, "binProxyVersion": "0.1"}
    assert http.post(f"{api}/keepalive", json=info).status_code == 200
    if agent_sha is not None:  # what the node's agent reports after a (self-)update
        body = {"nodeName": name, "binName": "ansible-proxy", "sha256": agent_sha}
        assert http.post(f"{api}/bins/ansible-proxy", json=body).status_code == 200


def test_nodes_behind_the_published_agent_are_marked_and_counted(
    bin_manager: BinManager, page: Page, tmp_path: Path
) -> None:
    old = bin_manager.publish("ansible-proxy", b"PK one-file agent 0.1.0")
    new = bin_manager.publish("ansible-proxy", b"PK one-file agent 0.1.1")
    arm = bin_manager.publish("ansible-proxy", b"PK one-file agent 0.1.1 arm", arch="aarch64")
    with httpx.Client() as http:
        _node(http, bin_manager.api, "current-01", "x86_64", new)
        _node(http, bin_manager.api, "lagging-01", "x86_64", old)
        _node(http, bin_manager.api, "arm-01", "aarch64", arm)
        _node(http, bin_manager.api, "silent-01", "x86_64", None)  # never reported one

    login(page, bin_manager)
    page.goto(f"{bin_manager.url}/dashboard/")
    shot(page, tmp_path, "agents-behind")
    behind = {
        name
        for name in ("current-01", "lagging-01", "arm-01", "silent-01")
        if page.locator("#nodes tbody tr", has_text=name).locator(".agent-behind").count()
    }
    assert behind == {"lagging-01", "silent-01"}
    assert page.inner_text("#agents-behind").startswith("2 of 4 node(s) do not run the published")
