"""/docs in a real Chromium: the API reference loads nothing from another origin and runs
no script (FastAPI's Swagger UI and ReDoc pages came from a CDN)."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import shot
from tests.support.server import BinManager


def test_api_docs_are_served_locally_without_script(
    bin_manager: BinManager, page: Page, browser_errors: list[str], tmp_path: Path
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{bin_manager.url}/docs")
    page.wait_for_load_state("networkidle")
    shot(page, tmp_path, "api-docs")
    assert page.locator("h1").inner_text().startswith("bin-manager")
    assert page.locator("code", has_text="/api/v1/bins/{bin_name}").count() >= 1
    assert page.locator("script").count() == 0
    assert requested, "the page itself"
    assert all(url.startswith(bin_manager.url) for url in requested), requested
    assert browser_errors == []

    with httpx.Client(base_url=bin_manager.url, timeout=30) as http:
        answer = http.get("/docs")
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "cdn" not in answer.text.lower()
        redoc = http.get("/redoc")
        assert redoc.status_code == 308
        assert redoc.headers["location"] == "/docs"
        assert http.get("/openapi.json").json()["info"]["title"] == "bin-manager"
