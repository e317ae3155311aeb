"""The dashboard's node listings are paged, in a real Chromium: the count, next and
previous links, the name filter; a bin's and a release's nodes too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import login, shot
from tests.support.many_nodes import database_url, insert_nodes, node_name
from tests.support.server import BinManager

COUNT = 250


@pytest.fixture
def many(tmp_path: Path) -> Iterator[BinManager]:
    """A server holding COUNT nodes (every 10th stale), each running `tool`."""
    insert_nodes(
        database_url(tmp_path / "bm" / "data"), COUNT, runs={"tool": ["c" * 64]}, stale_every=10
    )
    manager = BinManager(tmp_path / "bm")
    try:
        yield manager.start()
    finally:
        manager.stop()


def _rows(page: Page, table: str) -> list[str]:
    return [text.split()[0] for text in page.locator(f"{table} tbody tr").all_inner_texts()]


def test_fleet_page_is_paged_with_count_and_links(
    many: BinManager, page: Page, tmp_path: Path, browser_errors: list[str]
) -> None:
    login(page, many)
    page.goto(f"{many.url}/dashboard/")
    assert page.inner_text("#fleet-count").startswith(f"{COUNT} node(s), 25 stale")
    assert "250 node(s); this page: node-000000 to node-000099" in page.inner_text("#page-count")
    first = _rows(page, "#nodes")
    assert first == [node_name(i) for i in range(100)]
    assert page.locator("#previous-page").count() == 0

    page.click("#next-page")
    page.wait_for_load_state()
    second = _rows(page, "#nodes")
    assert second == [node_name(i) for i in range(100, 200)]
    page.click("#next-page")
    page.wait_for_load_state()
    third = _rows(page, "#nodes")
    assert third == [node_name(i) for i in range(200, COUNT)]
    assert page.locator("#next-page").count() == 0
    assert not set(first) & set(second)
    assert not set(second) & set(third)
    shot(page, tmp_path, "fleet-page-3")

    page.click("#previous-page")
    page.wait_for_load_state()
    assert _rows(page, "#nodes") == second
    page.click("#first-page")
    page.wait_for_load_state()
    assert _rows(page, "#nodes") == first

    page.fill("#prefix", "node-00012")
    page.click("form.filter button[type=submit]")
    page.wait_for_load_state()
    assert _rows(page, "#nodes") == [node_name(i) for i in range(120, 130)]
    assert page.inner_text("#page-count").startswith("10 node(s) named node-00012…")
    assert browser_errors == []


def test_bin_and_release_pages_page_their_nodes(many: BinManager, page: Page) -> None:
    login(page, many)
    page.goto(f"{many.url}/dashboard/bins/tool?limit=50")
    assert _rows(page, "#running") == [node_name(i) for i in range(50)]
    assert page.inner_text("#page-count").startswith(f"{COUNT} node(s)")
    page.click("#next-page")
    page.wait_for_load_state()
    assert _rows(page, "#running") == [node_name(i) for i in range(50, 100)]
    assert "limit=50" in page.url

    response = page.goto(f"{many.url}/dashboard/?limit=1001")
    assert response is not None
    assert response.status == 422
