"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and a fleet.

Each test gets a fresh browser profile in its tmp dir; `fleet` fills a real bin-manager
through the agent API the way agents would (keepalive, bin reports, progress).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from tests.support.server import BinManager

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def context(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A browser with a fresh user data dir, closed (and its Chromium ended) after the test."""
    browser = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        viewport={"width": 1200, "height": 800},
    )
    browser.set_default_timeout(20_000)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def browser_errors() -> list[str]:
    """Console errors and uncaught exceptions of `page` (a CSP violation is one)."""
    return []


@pytest.fixture
def page(context: BrowserContext, browser_errors: list[str]) -> Page:
    tab = context.pages[0] if context.pages else context.new_page()
    tab.on("console", lambda msg: browser_errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: browser_errors.append(str(exc)))
    return tab


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot under the test's tmp dir (to look at when a test fails)."""
    path = tmp_path / "screenshots" / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Page, manager: BinManager, token: str | None = None) -> None:
    """Log in with the admin token (break-glass: no name, the token as the password)."""
    page.goto(f"{manager.url}/dashboard/login")
    page.fill("input[name=password]", token or manager.admin_token)
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()


def login_as(page: Page, manager: BinManager, name: str, password: str) -> None:
    """Log in as a person."""
    page.goto(f"{manager.url}/dashboard/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()


@dataclass
class Fleet:
    """What the fleet fixture put into the bin-manager."""

    manager: BinManager
    v1: str
    v2: str
    arm: str

    def answer(self, node: str, arch: str = "x86_64") -> str:
        """What GET /api/v1/bins/hello tells `node` to run."""
        response = httpx.get(
            f"{self.manager.api}/bins/hello", params={"nodeName": node, "arch": arch}
        )
        assert response.status_code == 200, response.text
        sha: str = response.json()["data"]["sha256"]
        return sha


def _register(http: httpx.Client, api: str, name: str, arch: str, os_release: str) -> None:
    info = {"cpuArch": arch, "osRelease": os_release, "nodeName": name, "binProxyVersion": "1.4.2"}
    assert http.post(f"{api}/keepalive", json=info).status_code == 200


def _report(http: httpx.Client, api: str, node: str, sha: str) -> None:
    body = {"nodeName": node, "binName": "hello", "sha256": sha, "version": "latest"}
    assert http.post(f"{api}/bins/hello", json=body).status_code == 200


def _progress(http: httpx.Client, api: str, node: str, sha: str, status: str) -> None:
    body = {
        "nodeName": node,
        "binName": "hello",
        "targetHash": sha,
        "processingTime": 7,
        "status": status,
    }
    assert http.post(f"{api}/bins/hello/progress", json=body).status_code == 200


def backdate(manager: BinManager, node: str, minutes: int) -> None:
    """Make `node` look as if its last call was `minutes` ago (it missed its ticks)."""
    then = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=minutes)
    with sqlite3.connect(manager.data_dir / "bin-manager.sqlite3") as db:
        db.execute("UPDATE nodes SET last_seen = ? WHERE name = ?", (then.isoformat(" "), node))


@pytest.fixture
def fleet(bin_manager: BinManager) -> Fleet:
    """hello v1 then v2 (x86_64) and one aarch64 release; three nodes in different states."""
    v1 = bin_manager.publish("hello", b"#!/bin/sh\n# hello v1\nexec sleep 3600\n")
    v2 = bin_manager.publish("hello", b"#!/bin/sh\n# hello v2\nexec sleep 3600\n")
    arm = bin_manager.publish("hello", b"#!/bin/sh\n# hello arm\n", arch="aarch64")
    api = bin_manager.api
    with httpx.Client() as http:
        _register(http, api, "web-01", "x86_64", "Debian GNU/Linux 12 (bookworm)")
        _register(http, api, "web-02", "x86_64", "Ubuntu 22.04.4 LTS")
        # Node names are A-Z a-z 0-9 . _ - only; free text (the OS) may hold markup.
        _register(http, api, "arm-01", "aarch64", "Debian <b>12</b>")
        for sha in (v1, v2):
            _progress(http, api, "web-01", sha, "in_progress")
            _progress(http, api, "web-01", sha, "success")
            _report(http, api, "web-01", sha)
        _report(http, api, "web-02", v1)
        _progress(http, api, "web-02", v2, "in_progress")
        _progress(http, api, "web-02", v2, "failed")
        _report(http, api, "arm-01", arm)
    backdate(bin_manager, "web-02", minutes=10)
    return Fleet(bin_manager, v1, v2, arm)
