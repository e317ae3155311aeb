"""Staged rollouts on the dashboard, in a real Chromium: the bin page draws the waves and
why a rollout halted; its Promote, Halt, Resume and Abort buttons steer the rollout behind
the admin login and the CSRF check; the fleet page marks rolling and halted bins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page

from tests.integration.dashboard.conftest import login, shot
from tests.support.procs import wait_until
from tests.support.server import BinManager, BinManagerFactory

NODES = ("web-01", "web-02", "web-03", "web-04")
LABELS = {"role": "web", "dc": "fra"}
POLICY = {"canary": "1", "waves": "50%,100%", "bakeSeconds": 3600, "maxFailures": "1"}
WHY = "watch: hello exited 3 times within 10 s"


@dataclass
class Staged:
    """A bin-manager whose four nodes run hello v1, and v2 rolling out in three waves."""

    manager: BinManager
    v1: str
    v2: str

    def rollout(self) -> dict[str, Any]:
        """The newest x86_64 rollout of hello, as the admin API shows it."""
        response = self.manager.admin_get("/bins/hello/rollout")
        assert response.status_code == 200, response.text
        rollouts: list[dict[str, Any]] = response.json()["data"]["rollouts"]
        assert [rollout["arch"] for rollout in rollouts] == ["x86_64"]
        return rollouts[0]

    def canary(self) -> str:
        name: str = self.rollout()["waves"][0]["nodes"][0]["name"]
        return name

    def answer(self, node: str) -> str:
        """What GET /api/v1/bins/hello tells `node` to run."""
        response = httpx.get(
            f"{self.manager.api}/bins/hello", params={"nodeName": node, "arch": "x86_64"}
        )
        assert response.status_code == 200, response.text
        sha: str = response.json()["data"]["sha256"]
        return sha

    def bin_page(self, page: Page) -> Locator:
        """Open the bin page; its x86_64 rollout."""
        page.goto(f"{self.manager.url}/dashboard/bins/hello")
        return page.locator("article.rollout[data-arch='x86_64']")


def _keepalive(http: httpx.Client, api: str, name: str) -> None:
    info = {
        "cpuArch": "x86_64",
        "osRelease": "Debian GNU/Linux 12 (bookworm)",
        "nodeName": name,
        "binProxyVersion": "1.4.2",
        "labels": LABELS,
    }
    assert http.post(f"{api}/keepalive", json=info).status_code == 200


def _running(http: httpx.Client, api: str, node: str, sha: str) -> None:
    body = {"nodeName": node, "binName": "hello", "sha256": sha, "version": "latest"}
    assert http.post(f"{api}/bins/hello", json=body).status_code == 200


def _progress(http: httpx.Client, api: str, node: str, sha: str, status: str) -> None:
    body = {
        "nodeName": node,
        "binName": "hello",
        "targetHash": sha,
        "processingTime": 4,
        "status": status,
        "reason": WHY,
    }
    response = http.post(f"{api}/bins/hello/progress", json=body)
    assert response.status_code == 200, response.text


@pytest.fixture
def staged(bin_manager_factory: BinManagerFactory) -> Staged:
    manager = bin_manager_factory(extra_env={"BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS": "0.5"})
    v1 = manager.publish("hello", b"#!/bin/sh\n# hello v1\nexec sleep 3600\n")
    with httpx.Client() as http:
        for name in NODES:
            _keepalive(http, manager.api, name)
            _running(http, manager.api, name, v1)
        policy = http.put(
            f"{manager.api}/admin/bins/hello/rollout/policy",
            json=POLICY,
            headers=manager.admin_headers,
        )
        assert policy.status_code == 200, policy.text
    v2 = manager.publish("hello", b"#!/bin/sh\n# hello v2\nexec sleep 3600\n")
    staged = Staged(manager, v1, v2)
    assert staged.rollout()["state"] == "rolling"
    return staged


def _waves(rollout: Locator) -> list[list[str]]:
    rows = rollout.locator("table.waves tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def _buttons(rollout: Locator) -> list[str]:
    found = rollout.locator("button.rollout-action")
    return [found.nth(i).get_attribute("data-action") or "" for i in range(found.count())]


def _click(page: Page, rollout: Locator, action: str) -> None:
    rollout.locator(f"button.rollout-action[data-action='{action}']").click()
    page.wait_for_url(f"**/dashboard/bins/hello?done=rollout-{action}")


def test_the_bin_page_draws_the_waves_and_its_buttons_steer_the_rollout(
    staged: Staged, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    canary = staged.canary()
    login(page, staged.manager)
    rollout = staged.bin_page(page)
    shot(page, tmp_path, "canary")
    policy = page.locator("#rollout-policy").inner_text()
    assert "every arch" in policy
    assert "--canary 1 --waves 50%,100% --bake 3600 --max-failures 1" in policy
    assert rollout.locator(".rollout-state").inner_text() == "rolling: the canary"
    assert staged.v2[:12] in rollout.locator("h3").inner_text()
    waves = _waves(rollout)
    assert [row[0] for row in waves] == ["the canary", "wave 1", "wave 2"]
    assert [row[1].splitlines()[0] for row in waves] == [
        "in progress",
        "not started",
        "not started",
    ]
    # what the wave waits for, under its state (honest counts: not yet installed)
    assert waves[0][1].splitlines()[1:] == ["waiting: 1 not installed yet (of 1 nodes)"]
    assert [row[2].split()[0] for row in waves] == ["1", "1", "2"]
    assert waves[0][3] == "0 / 1"
    member = rollout.locator(f"li.member[data-node='{canary}']")
    assert member.get_attribute("class") == "member upgrading"
    assert _buttons(rollout) == ["promote", "halt", "abort"]
    assert page.locator(".halt-reason").count() == 0
    page.goto(f"{staged.manager.url}/dashboard/")
    assert page.locator("#bins .rollout-badge").inner_text().strip() == "rolling: the canary x86_64"

    rollout = staged.bin_page(page)
    _click(page, rollout, "promote")
    assert page.get_by_role("status").inner_text().startswith("Rollout promoted")
    state = staged.rollout()
    assert (state["state"], state["wave"]) == ("rolling", 1)
    assert rollout.locator(".rollout-state").inner_text() == "rolling: wave 1 of 2"
    states = [row[1].splitlines()[0] for row in _waves(rollout)]
    assert states == ["promoted", "in progress", "not started"]
    wave_1 = state["waves"][1]["nodes"][0]["name"]
    assert staged.answer(wave_1) == staged.v2  # the second wave is told the new release
    page.goto(f"{staged.manager.url}/dashboard/")
    assert (
        page.locator("#bins .rollout-badge").inner_text().strip() == "rolling: wave 1 of 2 x86_64"
    )

    rollout = staged.bin_page(page)
    _click(page, rollout, "halt")
    state = staged.rollout()
    assert (state["state"], state["reverted"], state["wave"]) == ("halted", False, 1)
    reason = rollout.locator(".halt-reason").inner_text()
    assert reason.startswith("Halted: halted by an operator — not reverted")
    assert _buttons(rollout) == ["resume", "abort"]
    page.goto(f"{staged.manager.url}/dashboard/")
    assert page.locator("#bins .rollout-badge").inner_text().strip() == "halted x86_64"

    rollout = staged.bin_page(page)
    _click(page, rollout, "resume")
    state = staged.rollout()
    assert (state["state"], state["reverted"], state["wave"]) == ("rolling", False, 1)
    assert page.locator(".halt-reason").count() == 0

    _click(page, rollout, "abort")
    shot(page, tmp_path, "aborted")
    state = staged.rollout()
    assert (state["state"], state["reverted"]) == ("halted", True)
    reason = rollout.locator(".halt-reason").inner_text()
    assert f"reverted to {staged.v1[:12]}" in reason
    assert rollout.locator(".rollout-state").inner_text() == "halted and reverted"
    assert _buttons(rollout) == ["resume"]  # aborted: only a resume goes on from here
    assert {staged.answer(node) for node in NODES} == {staged.v1}

    page.goto(f"{staged.manager.url}/dashboard/activity")
    shot(page, tmp_path, "activity")
    kinds = [
        kind.strip() for kind in page.locator("#activity tbody td:nth-child(2)").all_inner_texts()
    ]
    assert kinds[:6] == [
        "rollout-revert",
        "rollout-halt",
        "rollout-resume",
        "rollout-halt",
        "rollout-promote",
        "rollout-start",
    ]
    revert = page.locator("#activity tbody tr").first.inner_text()
    assert f"reverted: every node is told {staged.v1[:12]} again" in revert
    rows = page.locator("#activity tbody tr")
    assert "halted: aborted by an operator" in rows.nth(1).inner_text()
    assert "halted: halted by an operator" in rows.nth(3).inner_text()
    assert browser_errors == []


def test_a_failed_canary_halts_the_rollout_and_the_page_says_why(
    staged: Staged, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    canary = staged.canary()
    with httpx.Client() as http:
        _progress(http, staged.manager.api, canary, staged.v2, "in_progress")
        _progress(http, staged.manager.api, canary, staged.v2, "failed")
    # The background check (every 0.5 s here) halts the rollout and reverts the fleet.
    wait_until(lambda: staged.rollout()["reverted"], 20, "the rollout halted and reverted")
    login(page, staged.manager)
    rollout = staged.bin_page(page)
    path = shot(page, tmp_path, "halted")
    print(f"screenshot of the halted rollout: {path}")
    reason = rollout.locator(".halt-reason")
    assert reason.get_attribute("role") == "alert"
    text = reason.inner_text()
    assert text.startswith("Halted: 1 of 1 nodes of the canary failed (--max-failures 1)")
    assert f"{canary} ({WHY})" in text
    assert f"reverted to {staged.v1[:12]}" in text
    assert rollout.locator(".rollout-state").inner_text() == "halted and reverted"
    canary_row = _waves(rollout)[0]
    assert canary_row[1] == "halted"
    assert canary_row[3] == "1 / 1"
    member = rollout.locator(f"li.member[data-node='{canary}']")
    assert member.get_attribute("class") == "member failed"
    assert WHY in member.inner_text()
    assert _buttons(rollout) == ["resume"]
    assert staged.answer(canary) == staged.v1

    page.goto(f"{staged.manager.url}/dashboard/")
    badge = page.locator("#bins .rollout-badge")
    assert badge.inner_text().strip() == "halted and reverted x86_64"
    assert "bad" in (badge.locator(".badge").get_attribute("class") or "")
    page.goto(f"{staged.manager.url}/dashboard/activity")
    halt = page.locator("#activity tbody tr", has_text="rollout-halt")
    assert "hello" in halt.inner_text()
    assert "x86_64" in halt.inner_text()
    assert "halted: 1 of 1 nodes of the canary failed" in halt.inner_text()
    failed = page.locator("#activity tbody tr", has_text="rollout-node-failed").inner_text()
    assert f"{canary} failed: {WHY}" in failed
    assert browser_errors == []


def test_rollout_forms_are_refused_without_the_csrf_token_or_out_of_turn(
    staged: Staged, page: Page
) -> None:
    login(page, staged.manager)
    url = f"{staged.manager.url}/dashboard/bins/hello/rollout"
    form: dict[str, str | float | bool] = {"arch": "x86_64"}
    # The browser's own cookies go along: only the CSRF token is missing or wrong.
    for action in ("promote", "halt", "abort"):
        missing = page.request.post(f"{url}/{action}", form=form)
        assert missing.status == 403
        assert "CSRF check failed" in missing.text()
    forged = page.request.post(f"{url}/promote", form={**form, "csrf": "0" * 64})
    assert forged.status == 403
    state = staged.rollout()
    assert (state["state"], state["wave"], state["reverted"]) == ("rolling", 0, False)

    # With the page's own token: a resume of a rolling rollout is a Conflict, shown as such.
    staged.bin_page(page)
    token = page.locator("#rollout input[name=csrf]").first.get_attribute("value")
    assert token
    conflict = page.request.post(f"{url}/resume", form={**form, "csrf": token})
    assert conflict.status == 409
    assert "nothing to resume for hello (x86_64): x86_64: rolling" in conflict.text()
    unknown = page.request.post(f"{url}/explode", form={**form, "csrf": token})
    assert unknown.status == 404
    assert staged.rollout()["state"] == "rolling"


def test_fleet_and_node_pages_show_the_nodes_labels(staged: Staged, page: Page) -> None:
    login(page, staged.manager)
    page.goto(f"{staged.manager.url}/dashboard/")
    for name in NODES:
        row = page.locator("#nodes tbody tr", has_text=name)
        assert row.locator("td.labels").inner_text() == "dc=fra,role=web"
    page.goto(f"{staged.manager.url}/dashboard/nodes/web-01")
    assert page.locator("#labels").inner_text() == "dc=fra,role=web"
