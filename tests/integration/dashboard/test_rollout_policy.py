"""The bin page's rollout policy form, in a real Chromium: it sets the bin's policy (every
arch, or one) exactly as `PUT /api/v1/admin/bins/{bin}/rollout/policy` does, behind the
admin login and the CSRF check; a bad value is the API's own message and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import login, shot
from tests.support.server import BinManager

POLICY = {"canary": "1", "waves": "50%,100%", "bakeSeconds": 3600, "maxFailures": "1"}
FIRST_CLI = "--canary 1 --waves 50%,100% --bake 3600 --max-failures 1"


def _policies(manager: BinManager) -> dict[str, Any]:
    """hello's own policies by arch ('*': every arch), as the admin API shows them."""
    response = manager.admin_get("/bins/hello/rollout")
    assert response.status_code == 200, response.text
    policies: dict[str, Any] = response.json()["data"]["policies"]
    return policies


def _put_policy(manager: BinManager, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(
        f"{manager.api}/admin/bins/hello/rollout/policy", json=body, headers=manager.admin_headers
    )


@pytest.fixture
def manager(bin_manager: BinManager) -> BinManager:
    """A bin-manager with hello published and a staged policy set through the API."""
    bin_manager.publish("hello", b"#!/bin/sh\n# hello v1\nexec sleep 3600\n")
    response = _put_policy(bin_manager, POLICY)
    assert response.status_code == 200, response.text
    return bin_manager


def _set_policy(page: Page, arch: str, mode: str, **fields: str) -> None:
    """Fill the bin page's policy form (fields by input name) and send it."""
    form = page.locator("#policy-form")
    form.locator("select[name=arch]").select_option(arch)
    form.locator(f"input[name=mode][value={mode}]").check()
    for name, value in fields.items():
        form.locator(f"input[name={name}]").fill(value)
    form.locator("#set-policy").click()


def test_the_policy_form_sets_the_bins_policy_as_the_api_does(
    manager: BinManager, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    login(page, manager)
    page.goto(f"{manager.url}/dashboard/bins/hello")
    form = page.locator("#policy-form")
    # Prefilled with the policy set through the API.
    assert form.locator("select[name=arch]").input_value() == ""
    assert form.locator("input[name=mode][value=staged]").is_checked()
    assert form.locator("input[name=waves]").input_value() == "50%,100%"
    assert form.locator("input[name=bake]").input_value() == "3600"
    assert form.locator("input[name=canary_label]").input_value() == ""

    _set_policy(page, "", "staged", canary="1", waves="50%,100%", bake="30", max_failures="1")
    page.wait_for_url("**/dashboard/bins/hello?done=rollout-policy")
    shot(page, tmp_path, "policy-set")
    assert page.get_by_role("status").inner_text().startswith("Rollout policy set")
    staged_cli = "--canary 1 --waves 50%,100% --bake 30 --max-failures 1"
    shown = page.locator("#rollout-policy").inner_text()
    assert "every arch: canary 1 node(s), then 50%, 100% of the fleet" in shown
    assert "each wave bakes 30 s" in shown
    assert staged_cli in shown
    assert _policies(manager) == {
        "*": {
            "immediate": False,
            "describe": staged_cli,
            "canary": "1",
            "waves": "50%,100%",
            "bakeSeconds": 30,
            "maxFailures": "1",
            "canaryLabel": None,
            "canaryNodes": None,
            "maxOffline": None,  # no limit: offline members never hold the wave
            "maxRefused": None,
            "watchSeconds": 0,  # not watched after every wave
            "windows": None,  # waves may start at any time
        }
    }
    assert form.locator("input[name=bake]").input_value() == "30"

    _set_policy(page, "", "immediate")  # the staged fields still hold values: ignored
    page.wait_for_url("**/dashboard/bins/hello?done=rollout-policy")
    assert "every arch: immediate" in page.locator("#rollout-policy").inner_text()
    assert form.locator("input[name=mode][value=immediate]").is_checked()
    assert _policies(manager) == {"*": {"immediate": True, "describe": "--immediate"}}

    _set_policy(
        page,
        "aarch64",
        "staged",
        canary="10%",
        waves="25%",
        bake="0",
        max_failures="5%",
        canary_label="role=web",
        canary_nodes="arm-01,arm-02",
    )
    page.wait_for_url("**/dashboard/bins/hello?done=rollout-policy")
    shot(page, tmp_path, "policy-per-arch")
    arm_cli = (
        "--canary 10% --waves 25%,100% --bake 0 --max-failures 5% --canary-label role=web "
        "--canary-nodes arm-01,arm-02"
    )
    shown = page.locator("#rollout-policy").inner_text()
    assert "aarch64 only: canary the nodes arm-01,arm-02 and the nodes labelled role=web" in shown
    assert arm_cli in shown
    policies = _policies(manager)
    assert policies["*"]["immediate"] is True
    assert policies["aarch64"]["describe"] == arm_cli
    assert policies["aarch64"]["canaryLabel"] == "role=web"
    assert policies["aarch64"]["canaryNodes"] == "arm-01,arm-02"

    # The same activity events as the API's PUT (the fixture's is the oldest).
    page.goto(f"{manager.url}/dashboard/activity")
    rows = page.locator("#activity tbody tr.rollout-policy")
    assert [row.strip() for row in rows.locator("td.reason").all_inner_texts()] == [
        arm_cli,
        "--immediate",
        staged_cli,
        FIRST_CLI,
    ]
    assert "aarch64" in rows.first.inner_text()
    assert browser_errors == []


def test_a_bad_policy_or_a_forged_form_is_refused_and_changes_nothing(
    manager: BinManager, page: Page, tmp_path: Path
) -> None:
    before = _policies(manager)
    login(page, manager)
    page.goto(f"{manager.url}/dashboard/bins/hello")
    _set_policy(page, "", "staged", waves="abc")
    page.wait_for_url("**/dashboard/bins/hello/rollout-policy")
    shot(page, tmp_path, "bad-policy")
    assert page.locator("h1").inner_text() == "Error"
    message = page.get_by_role("alert").inner_text()
    api = _put_policy(manager, {**POLICY, "waves": "abc"})
    assert api.status_code == 400
    assert message == api.json()["message"]  # the API's own words for the same value
    assert message == "--waves 'abc': expected a number of nodes or a percentage"
    assert _policies(manager) == before

    url = f"{manager.url}/dashboard/bins/hello/rollout-policy"
    form: dict[str, str | float | bool] = {"mode": "immediate"}
    # The browser's own cookies go along: only the CSRF token is missing or wrong.
    missing = page.request.post(url, form=form)
    assert missing.status == 403
    assert "CSRF check failed" in missing.text()
    forged = page.request.post(url, form={**form, "csrf": "0" * 64})
    assert forged.status == 403
    assert _policies(manager) == before

    # Logged out: a post with the visitor's own valid token is refused all the same.
    page.context.clear_cookies()
    page.goto(f"{manager.url}/dashboard/login")
    token = page.locator("form.login input[name=csrf]").get_attribute("value")
    assert token
    visitor = page.request.post(url, form={**form, "csrf": token})
    assert visitor.status == 403
    assert "Log in to do this" in visitor.text()
    assert _policies(manager) == before
