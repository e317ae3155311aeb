"""The admin buttons change what the agents are told; forms without the CSRF token do not."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.integration.dashboard.conftest import Fleet, login, shot
from tests.support.server import BinManagerFactory


def test_pin_pause_and_resume_buttons_change_what_agents_are_told(
    fleet: Fleet, page: Page, tmp_path: Path
) -> None:
    assert fleet.answer("web-01") == fleet.v2
    login(page, fleet.manager)
    page.goto(f"{fleet.manager.url}/dashboard/bins/hello")
    page.click(f"button.pin[data-sha='{fleet.v1}']")
    page.wait_for_url("**/dashboard/bins/hello?done=pinned")
    shot(page, tmp_path, "after-pin")
    assert page.get_by_role("status").inner_text() == "Release pinned."
    assert fleet.answer("web-01") == fleet.v1  # the fleet-wide rollback the button promises
    assert fleet.answer("arm-01", arch="aarch64") == fleet.arm  # other arches untouched
    x86 = page.locator("section.arch", has=page.locator("h2", has_text="x86_64"))
    assert "pinned" in x86.locator("h2").inner_text()

    page.click("#toggle-pause")
    page.wait_for_url("**/dashboard/bins/hello?done=paused")
    assert page.locator("#state").inner_text() == "paused"
    bins = fleet.manager.admin_get("/bins").json()["data"]
    assert bins[0]["paused"] is True
    page.click("#toggle-pause")
    page.wait_for_url("**/dashboard/bins/hello?done=resumed")
    assert fleet.manager.admin_get("/bins").json()["data"][0]["paused"] is False

    page.goto(f"{fleet.manager.url}/dashboard/activity")
    kinds = page.locator("#activity tbody td:nth-child(2)").all_inner_texts()
    assert [kind.strip() for kind in kinds[:3]] == ["resume", "pause", "pin"]


def test_a_post_without_the_csrf_token_is_refused(fleet: Fleet, page: Page) -> None:
    login(page, fleet.manager)
    url = f"{fleet.manager.url}/dashboard/bins/hello/pin"
    form: dict[str, str | float | bool] = {"arch": "x86_64", "sha256": fleet.v1}
    # The browser's own cookies go along: only the CSRF token is missing or wrong.
    missing = page.request.post(url, form=form)
    assert missing.status == 403
    assert "CSRF check failed" in missing.text()
    forged = page.request.post(url, form={**form, "csrf": "0" * 64})
    assert forged.status == 403
    paused = page.request.post(f"{fleet.manager.url}/dashboard/bins/hello/pause", form={})
    assert paused.status == 403
    assert fleet.answer("web-01") == fleet.v2
    assert fleet.manager.admin_get("/bins").json()["data"][0]["paused"] is False


def test_public_pages_show_no_buttons_and_refuse_actions(
    bin_manager_factory: BinManagerFactory, page: Page, tmp_path: Path
) -> None:
    manager = bin_manager_factory(extra_env={"BIN_MANAGER_DASHBOARD_PUBLIC": "1"})
    v1 = manager.publish("hello", b"one")
    v2 = manager.publish("hello", b"two")
    page.goto(f"{manager.url}/dashboard/bins/hello")
    shot(page, tmp_path, "public-bin")
    assert page.locator("#state").inner_text() == "live"
    assert page.locator("button.pin").count() == 0
    assert page.locator("#toggle-pause").count() == 0
    # A visitor with a valid session and CSRF token, but no login, still may not pin.
    page.goto(f"{manager.url}/dashboard/login")
    token = page.locator("input[name=csrf]").get_attribute("value")
    assert token
    refused = page.request.post(
        f"{manager.url}/dashboard/bins/hello/pin",
        form={"arch": "x86_64", "sha256": v1, "csrf": token},
    )
    assert refused.status == 403
    assert "Log in to do this" in refused.text()
    latest = manager.admin_get("/bins").json()["data"][0]["latest"]
    assert latest == {"x86_64": v2}
