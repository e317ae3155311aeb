"""Node credentials on the dashboard: a pending enrolment approved with the fingerprint the
agent logs, a node's and a proxy's credential revoked, and wrong logins throttled."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import login, shot
from tests.support.server import BinManager, BinManagerFactory


def _info(name: str) -> dict[str, str]:
    return {"cpuArch": "x86_64", "osRelease": "Debian GNU/Linux 12 (bookworm)",
            "nodeName": name, "binProxyVersion": "1.4.2"}  # fmt: skip


def _enrol(manager: BinManager, name: str, token: str, enrolment: str | None = None) -> str:
    """POST /enrol as an agent does on its first tick; the fingerprint the server shows."""
    headers = {"Authorization": f"Bearer {enrolment}"} if enrolment else {}
    answer = httpx.post(
        f"{manager.api}/enrol", json={**_info(name), "nodeToken": token}, headers=headers
    )
    assert answer.status_code == (201 if enrolment else 202), answer.text
    fingerprint: str = answer.json()["data"]["fingerprint"]
    return fingerprint


def _keepalive(manager: BinManager, name: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{manager.api}/keepalive", json=_info(name), headers=headers).status_code


def test_approve_a_pending_node_and_revoke_a_node_and_a_proxy(
    bin_manager_factory: BinManagerFactory, page: Page, tmp_path: Path
) -> None:
    manager = bin_manager_factory(node_auth="required")
    newcomer, veteran = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    pending_fp = _enrol(manager, "new-01", newcomer)  # no enrolment token: waits
    _enrol(manager, "web-01", veteran, manager.enrolment_token)
    manager.create_proxy("edge")
    assert _keepalive(manager, "new-01", newcomer) == 401  # not enrolled yet

    login(page, manager)
    page.click("header nav a:has-text('Enrolments')")
    shot(page, tmp_path, "pending")
    row = page.locator("#pending tr[data-node='new-01']")
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert cells[:3] == ["new-01", pending_fp, "127.0.0.1"]
    button = row.locator("button.approve")
    assert button.inner_text() == f"Approve {pending_fp}"  # what the agent's log line shows
    button.click()
    page.wait_for_url("**/dashboard/enrolments?done=approved")
    assert "Enrolment approved" in page.get_by_role("status").inner_text()
    assert page.locator("#pending tr[data-node='new-01']").count() == 0
    assert manager.credential("new-01")["status"] == "enrolled"
    assert manager.credential("new-01")["fingerprint"] == pending_fp
    assert _keepalive(manager, "new-01", newcomer) == 200  # the node's next tick goes on

    page.goto(f"{manager.url}/dashboard/nodes/web-01")
    assert "enrolled" in page.locator("#credential").inner_text()
    assert _keepalive(manager, "web-01", veteran) == 200
    page.click("#revoke")
    page.wait_for_url("**/dashboard/nodes/web-01?done=revoked")
    shot(page, tmp_path, "revoked")
    assert "revoked" in page.locator("#credential").inner_text()
    assert page.locator("#revoke").count() == 0
    assert manager.credential("web-01")["status"] == "revoked"
    refused = httpx.post(
        f"{manager.api}/keepalive",
        json=_info("web-01"),
        headers={"Authorization": f"Bearer {veteran}"},
    )
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]

    page.goto(f"{manager.url}/dashboard/enrolments")
    page.click("button.revoke-proxy[data-proxy='edge']")
    page.wait_for_url("**/dashboard/enrolments?done=proxy-revoked")
    assert "revoked" in page.locator("#proxies tr[data-proxy='edge']").inner_text()
    proxies = manager.admin_get("/proxies").json()["data"]
    assert proxies[0]["name"] == "edge"
    assert proxies[0]["revokedAt"] is not None


def test_approval_of_a_replaced_request_or_without_csrf_is_refused(
    bin_manager_factory: BinManagerFactory, page: Page
) -> None:
    manager = bin_manager_factory(node_auth="required")
    first = _enrol(manager, "new-01", secrets.token_urlsafe(32))
    login(page, manager)
    page.goto(f"{manager.url}/dashboard/enrolments")
    csrf = page.locator("#pending input[name=csrf]").first.get_attribute("value")
    assert csrf
    second = _enrol(manager, "new-01", secrets.token_urlsafe(32))  # replaces the first
    url = f"{manager.url}/dashboard/enrolments/new-01/approve"
    stale = page.request.post(url, form={"fingerprint": first, "csrf": csrf})
    assert stale.status == 409
    assert f"has fingerprint {second}, not {first}" in stale.text()
    forged = page.request.post(url, form={"fingerprint": second})
    assert forged.status == 403
    assert "CSRF check failed" in forged.text()
    revoke = page.request.post(f"{manager.url}/dashboard/nodes/new-01/revoke", form={})
    assert revoke.status == 403
    assert manager.credential("new-01")["status"] == "none"
    assert manager.credential("new-01")["pending"]["fingerprint"] == second


def test_wrong_logins_are_throttled_like_the_admin_api(
    bin_manager_factory: BinManagerFactory, page: Page
) -> None:
    manager = bin_manager_factory(
        extra_env={
            "BIN_MANAGER_AUTH_FAILURE_BURST": "3",
            "BIN_MANAGER_AUTH_FAILURE_PER_SECOND": "0.01",
        }
    )
    page.goto(f"{manager.url}/dashboard/login")
    csrf = page.locator("input[name=csrf]").get_attribute("value")
    assert csrf
    url = f"{manager.url}/dashboard/login"
    wrong: dict[str, str | float | bool] = {
        "token": "wrong-but-long-token-0123456789",
        "csrf": csrf,
    }
    assert [page.request.post(url, form=wrong).status for _ in range(3)] == [401, 401, 401]
    throttled = page.request.post(url, form=wrong)
    assert throttled.status == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed logins" in throttled.text()
    # The budget is the admin API's: the right token waits too, on both.
    right = page.request.post(url, form={"token": manager.admin_token, "csrf": csrf})
    assert right.status == 429
    assert manager.admin_get("/bins").status_code == 429


def test_pending_enrolments_are_rejected_one_by_one_or_all_at_once(
    bin_manager_factory: BinManagerFactory, page: Page, tmp_path: Path
) -> None:
    manager = bin_manager_factory(node_auth="required")
    for name in ("junk-01", "junk-02", "junk-03"):
        _enrol(manager, name, secrets.token_urlsafe(32))
    login(page, manager)
    page.goto(f"{manager.url}/dashboard/enrolments")
    assert page.locator("#reject-all").inner_text() == "Reject every pending request (3)"
    page.click("button.reject[data-node='junk-02']")
    page.wait_for_url("**/dashboard/enrolments?done=rejected")
    assert page.locator("#pending tr[data-node]").count() == 2
    assert page.locator("#pending tr[data-node='junk-02']").count() == 0
    page.click("#reject-all")
    page.wait_for_url("**/dashboard/enrolments?done=rejected-all")
    shot(page, tmp_path, "rejected-all")
    assert "No enrolment is waiting for approval." in page.locator("#pending").inner_text()
    for name in ("junk-01", "junk-02", "junk-03"):
        assert manager.credential(name) == {
            "nodeName": name,
            "status": "none",
            "fingerprint": None,
            "proxy": None,
            "pending": None,
            "adminLabels": "",
        }
