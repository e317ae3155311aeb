"""People in real Chromium: a person logs in with the one-time password `users add` gave,
chooses their own, sees who they are and only the buttons of their role; an operator's pin
is named in the activity log and on the Audit page; a viewer's forged form is refused
naming the right; a disabled person's open page goes back to the login."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.integration.dashboard.conftest import Fleet, login_as, shot
from tests.support.team import add_person, admin_call, password_of


def _choose_password(page: Page, fleet: Fleet, name: str, one_time: str) -> None:
    page.fill("input[name=current]", one_time)
    page.fill("input[name=new]", password_of(name))
    page.fill("input[name=again]", password_of(name))
    page.click("#password-form button[type=submit]")
    page.wait_for_url(f"{fleet.manager.url}/dashboard/")


def test_an_operator_logs_in_as_themselves_and_their_pin_is_named(
    fleet: Fleet, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    manager = fleet.manager
    one_time = add_person(manager, "olga", "operator", ["hel*"])
    login_as(page, manager, "olga", one_time)
    assert "/dashboard/password" in page.url
    assert "one-time password" in page.locator("p.flash").inner_text()
    page.goto(f"{manager.url}/dashboard/")  # nothing else until she chooses her own
    assert "/dashboard/password" in page.url
    shot(page, tmp_path, "choose-password")
    _choose_password(page, fleet, "olga", one_time)
    assert page.locator("#who").inner_text() == "olga · operator for hel*"

    page.goto(f"{manager.url}/dashboard/bins/hello")
    page.click(f"button.pin[data-sha='{fleet.v1}']")
    page.wait_for_url("**/dashboard/bins/hello?done=pinned")
    assert fleet.answer("web-01") == fleet.v1
    page.goto(f"{manager.url}/dashboard/activity")
    shot(page, tmp_path, "activity")
    first = page.locator("#activity tbody tr").first
    assert first.locator("td:nth-child(2)").inner_text().strip() == "pin"
    assert first.locator("td.who").inner_text() == "olga"
    page.goto(f"{manager.url}/dashboard/audit?actor=olga")
    shot(page, tmp_path, "audit")
    actions = page.locator("#audit tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions == ["pin", "change-password", "login"]
    assert "olga" in page.locator("#audit tr[data-action=pin] td.actor").inner_text()
    assert browser_errors == []


def test_a_viewer_sees_no_buttons_is_refused_a_forged_form_and_a_disable_ends_the_session(
    fleet: Fleet, page: Page, tmp_path: Path
) -> None:
    manager = fleet.manager
    one_time = add_person(manager, "vic", "viewer")
    login_as(page, manager, "vic", one_time)
    _choose_password(page, fleet, "vic", one_time)
    assert page.locator("#who").inner_text() == "vic · viewer"
    page.goto(f"{manager.url}/dashboard/bins/hello")
    shot(page, tmp_path, "viewer-bin")
    assert page.locator("button.pin").count() == 0
    assert page.locator("#toggle-pause").count() == 0
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    forged = page.request.post(f"{manager.url}/dashboard/bins/hello/pause", form={"csrf": token})
    assert forged.status == 403
    assert "person vic (viewer) lacks the right &#39;pause&#39; on bin &#39;hello&#39;" in (
        forged.text()
    )
    assert manager.admin_get("/bins").json()["data"][0]["paused"] is False

    admin_call(manager, "POST", "/users/vic/disable")
    page.reload()
    assert "/dashboard/login" in page.url
    page.fill("input[name=name]", "vic")
    page.fill("input[name=password]", password_of("vic"))
    page.click("form.login button[type=submit]")
    assert "disabled" in page.locator("p.flash.bad").inner_text()
