"""A team on a bin-manager, for the tests of people, roles, tokens and the audit trail:
API tokens made with the admin token, people added and logged in to the dashboard the way a
browser does (the one-time password, then their own), over the server's own `client()`.
Works with the real server (tests/support/server.py) and the app in this process alike.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.support.admin import AdminCalls


def password_of(name: str) -> str:
    """What each person sets after the first login (not containing their name)."""
    return f"long secret number {hashlib.sha256(name.encode()).hexdigest()[:10]}"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def admin_call(server: AdminCalls, method: str, path: str, **kwargs: Any) -> Any:
    """The `data` of an admin API call made with the admin token (asserted to succeed)."""
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        answer = http.request(method, path, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def make_token(
    server: AdminCalls,
    name: str,
    role: str,
    bins: list[str] | None = None,
    expires_days: int | None = 90,
) -> str:
    """A new API token (shown once by the server)."""
    body = {"name": name, "role": role, "bins": bins, "expiresDays": expires_days}
    token: str = admin_call(server, "POST", "/tokens", json=body)["token"]
    return token


def add_person(server: AdminCalls, name: str, role: str, bins: list[str] | None = None) -> str:
    """A new person; their one-time password."""
    body = {"name": name, "role": role, "bins": bins}
    password: str = admin_call(server, "POST", "/users", json=body)["password"]
    return password


def log_in(browser: httpx.Client, name: str, password: str) -> httpx.Response:
    """POST the login form as a browser does (the answer: a redirect, or the page again)."""
    form = {"name": name, "password": password, "csrf": csrf_of(browser.get("/dashboard/login"))}
    return browser.post("/dashboard/login", data=form)


def choose_password(browser: httpx.Client, current: str, new: str) -> httpx.Response:
    page = browser.get("/dashboard/password")
    form = {"current": current, "new": new, "again": new, "csrf": csrf_of(page)}
    return browser.post("/dashboard/password", data=form)


@contextmanager
def person_browser(
    server: AdminCalls, name: str, role: str, bins: list[str] | None = None
) -> Iterator[httpx.Client]:
    """A browser logged in as a new person who chose their own password."""
    first = add_person(server, name, role, bins)
    with server.client(base_url=server.url) as browser:
        assert log_in(browser, name, first).status_code == 303
        answer = choose_password(browser, first, password_of(name))
        assert answer.status_code == 303, answer.text
        yield browser
