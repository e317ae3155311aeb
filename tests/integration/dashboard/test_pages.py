"""The dashboard pages, in a real Chromium, show what the bin-manager's API holds."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import Fleet, login, shot
from tests.support.server import BinManager


def _cells(page: Page, row_text: str, table: str) -> list[str]:
    row = page.locator(f"{table} tbody tr", has_text=row_text)
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def test_fleet_page_lists_every_node_the_api_knows(
    fleet: Fleet, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    login(page, fleet.manager)
    response = page.goto(f"{fleet.manager.url}/dashboard/")
    assert response is not None
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    shot(page, tmp_path, "fleet")
    nodes = fleet.manager.admin_get("/nodes").json()["data"]
    assert len(nodes) == 3
    for node in nodes:
        cells = _cells(page, node["nodeName"], "#nodes")
        assert cells[:4] == [
            node["nodeName"],
            node["cpuArch"],
            node["osRelease"],
            node["binProxyVersion"],
        ]
    assert _cells(page, "web-02", "#nodes")[6] == "stale"  # backdated 10 minutes
    assert _cells(page, "web-01", "#nodes")[6] == "active"
    # What a node says of itself is shown as text, never interpreted as markup.
    assert page.locator("#nodes b").count() == 0
    assert page.get_by_text("Debian <b>12</b>").count() == 1
    bins = _cells(page, "hello", "#bins")
    assert fleet.v2[:12] in bins[1]
    assert fleet.arm[:12] in bins[1]
    # web-01 runs v2 and arm-01 runs the aarch64 latest; web-02 is behind.
    assert "2/3 on latest" in bins[2]
    # The stylesheet and script load under the page's CSP: a blocked one is a console error.
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
    assert browser_errors == []


def test_bin_release_node_and_activity_pages(
    fleet: Fleet, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    url = fleet.manager.url
    login(page, fleet.manager)
    page.goto(f"{url}/dashboard/bins/hello")
    shot(page, tmp_path, "bin")
    assert page.locator("#state").inner_text() == "live"
    x86 = page.locator("section.arch", has=page.locator("h2", has_text="x86_64"))
    assert "1/2 on latest (50%)" in x86.locator(".bar-text").inner_text()
    v2_row = x86.locator("tr", has_text=fleet.v2[:12]).locator("td").all_inner_texts()
    assert "latest" in v2_row[0]
    assert v2_row[3] == "1"
    assert "1 failed" in v2_row[4]
    v1_row = x86.locator("tr", has_text=fleet.v1[:12]).locator("td").all_inner_texts()
    assert v1_row[3] == "1"
    assert v1_row[5] == "unsigned"  # published without --sign-key (docs/security.md)
    assert "Pin fleet-wide" in v1_row[6]
    assert "web-02" in page.locator("#failures").inner_text()
    api_nodes = fleet.manager.admin_get("/bins/hello/nodes").json()["data"]
    for row in api_nodes:
        assert row["sha256"][:12] in _cells(page, row["nodeName"], "#running")[2]

    page.click(f"a[href$='{fleet.v1}']")
    shot(page, tmp_path, "release")
    assert page.locator("#sha").inner_text() == fleet.v1
    assert page.locator("#nodes tbody tr").all_inner_texts()[0].startswith("web-02")

    page.goto(f"{url}/dashboard/nodes/web-02")
    shot(page, tmp_path, "node")
    versions = page.locator("#versions tbody tr").all_inner_texts()
    assert len(versions) == 1
    assert fleet.v1[:12] in versions[0]
    assert "not latest" in versions[0]
    timeline = page.locator("#timeline li").all_inner_texts()
    assert "failed upgrading to " + fleet.v2[:12] in timeline[0]
    assert "reported running " + fleet.v1[:12] in timeline[-1]

    page.goto(f"{url}/dashboard/activity")
    shot(page, tmp_path, "activity")
    kinds = [
        cell.strip() for cell in page.locator("#activity tbody td:nth-child(2)").all_inner_texts()
    ]
    assert kinds.count("publish") == 3
    assert kinds.count("upgrade") == 2
    assert kinds.count("rollback") == 1
    assert browser_errors == []


def test_pages_need_the_admin_token_by_default(bin_manager: BinManager, page: Page) -> None:
    page.goto(f"{bin_manager.url}/")  # the server's root leads to the dashboard's login
    assert page.url == f"{bin_manager.url}/dashboard/login?next=/dashboard/"
    page.goto(f"{bin_manager.url}/dashboard/activity")
    assert page.url.endswith("/dashboard/login?next=/dashboard/activity")
    login(page, bin_manager, token="not-the-admin-token-at-all")
    assert page.get_by_role("alert").inner_text() == "Wrong admin token."
    login(page, bin_manager)
    assert page.url == f"{bin_manager.url}/dashboard/"
    assert page.locator("h1").inner_text() == "Fleet"
    cookie = next(c for c in page.context.cookies() if c["name"] == "bm_dashboard")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"


def test_a_rollback_says_who_and_why(
    fleet: Fleet, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    url = fleet.manager.url
    why = "inspector: alerts: firing <b>HighErrorRate</b>"  # markup, shown as text
    with httpx.Client() as http:
        for node, status, reason in (
            ("web-01", "failed", why),  # web-01 had upgraded to v2 fine
            ("web-02", "failed", "watch: hello is BACKOFF after restart (exit status 3)"),
            ("web-01", "success", f"pin: moved back to {fleet.v1[:12]}"),
        ):
            body = {
                "nodeName": node,
                "binName": "hello",
                "targetHash": fleet.v2 if status == "failed" else fleet.v1,
                "processingTime": 5,
                "status": status,
                "reason": reason,
            }
            assert http.post(f"{fleet.manager.api}/bins/hello/progress", json=body).is_success
    login(page, fleet.manager)

    page.goto(f"{url}/dashboard/nodes/web-01")
    shot(page, tmp_path, "node-rollback")
    timeline = page.locator("#timeline li").all_inner_texts()
    assert f"moved back to {fleet.v1[:12]}" in timeline[0]
    moved_back = "by the bin-manager's move back (a pin or a reverted rollout): moved back to"
    assert f"{moved_back} {fleet.v1[:12]}" in timeline[0]
    assert f"rolled back from {fleet.v2[:12]}, which had upgraded fine" in timeline[1]
    assert "by the inspector: alerts: firing <b>HighErrorRate</b>" in timeline[1]
    assert "failed upgrading" not in timeline[1]
    assert page.locator("#timeline b", has_text="HighErrorRate").count() == 0

    page.goto(f"{url}/dashboard/nodes/web-02")
    timeline = page.locator("#timeline li").all_inner_texts()
    assert f"failed upgrading to {fleet.v2[:12]}, rolled back" in timeline[0]
    assert "by the agent's watch: hello is BACKOFF after restart (exit status 3)" in timeline[0]

    page.goto(f"{url}/dashboard/bins/hello")
    failures = page.locator("#failures tbody tr").all_inner_texts()
    assert "web-02" in failures[0]  # newest first
    assert "failed → rolled back" in failures[0]
    assert "web-01" in failures[1]
    assert "ran, then rolled back" in failures[1]
    assert "by the inspector: alerts: firing <b>HighErrorRate</b>" in failures[1]

    page.goto(f"{url}/dashboard/activity")
    rows = page.locator("#activity tbody tr").all_inner_texts()
    assert any("by the inspector: alerts: firing <b>HighErrorRate</b>" in row for row in rows)
    assert page.locator("#activity b").count() == 0
    assert browser_errors == []


def test_a_failure_the_release_did_not_cause_is_shown_apart(
    fleet: Fleet, page: Page, browser_errors: list[str]
) -> None:
    url = fleet.manager.url
    with httpx.Client() as http:
        for node, cause, reason in (
            ("web-01", "host", "agent: download stalled: no byte for 60 s"),
            ("web-02", "refused", "trust: signed by no trusted key"),
        ):
            body = {
                "nodeName": node,
                "binName": "hello",
                "targetHash": fleet.v2,
                "processingTime": 61,
                "status": "failed",
                "reason": reason,
                "cause": cause,
            }
            assert http.post(f"{fleet.manager.api}/bins/hello/progress", json=body).is_success
    login(page, fleet.manager)

    page.goto(f"{url}/dashboard/bins/hello")
    failures = page.locator("#failures tbody tr").all_inner_texts()
    assert "refused by the host (not a failure)" in failures[0]
    assert "could not try it (the host's trouble, not the release's)" in failures[1]
    assert "rolled back" not in failures[0] + failures[1]
    x86 = page.locator("section.arch", has=page.locator("h2", has_text="x86_64"))
    v2_row = x86.locator("tr", has_text=fleet.v2[:12]).locator("td").all_inner_texts()
    assert "1 failed" in v2_row[4]  # the release's own failure only

    page.goto(f"{url}/dashboard/nodes/web-01")
    timeline = page.locator("#timeline li").all_inner_texts()
    assert f"could not try {fleet.v2[:12]}: the host's trouble" in timeline[0]

    page.goto(f"{url}/dashboard/activity")
    kinds = [
        cell.strip() for cell in page.locator("#activity tbody td:nth-child(2)").all_inner_texts()
    ]
    shown = {kind: kinds.count(kind) for kind in ("host-trouble", "refused", "rollback")}
    assert shown == {"host-trouble": 1, "refused": 1, "rollback": 1}
    assert browser_errors == []
