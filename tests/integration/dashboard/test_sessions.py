"""Dashboard sessions: logging out ends the session on the server (a copied cookie stops
working, on every replica), and BIN_MANAGER_SECURE_COOKIES marks the cookie Secure."""

from __future__ import annotations

import re

import httpx

from tests.support.server import BinManager, BinManagerFactory

COOKIE = "bm_dashboard"


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def _log_in(http: httpx.Client, manager: BinManager) -> str:
    """Log in as a browser would; the admin session's cookie value."""
    form = {"token": manager.admin_token, "csrf": _csrf(http.get("/dashboard/login"))}
    answer = http.post("/dashboard/login", data={**form, "next": "/dashboard/"})
    assert answer.status_code == 303, answer.text
    return answer.cookies[COOKIE]


def test_a_copied_session_cookie_stops_working_after_logout_on_every_replica(
    bin_manager_factory: BinManagerFactory,
) -> None:
    manager = bin_manager_factory()
    # a second replica on the same database (and admin token: the same signing key)
    database = f"sqlite+pysqlite:///{manager.data_dir / 'bin-manager.sqlite3'}"
    replica = bin_manager_factory(admin_token=manager.admin_token, database_url=database)
    manager.publish("hello", b"one")
    with manager.client(base_url=manager.url) as browser:
        copied = _log_in(browser, manager)
        fleet = browser.get("/dashboard/")
        assert fleet.status_code == 200
        with httpx.Client(base_url=replica.url, timeout=30) as thief:
            stolen = {"Cookie": f"{COOKIE}={copied}"}
            assert thief.get("/dashboard/", headers=stolen).status_code == 200  # still in

            out = browser.post("/dashboard/logout", data={"csrf": _csrf(fleet)})
            assert out.status_code == 303
            assert out.headers["location"] == "/dashboard/login"

            for server in (manager.url, replica.url):
                replayed = thief.get(f"{server}/dashboard/", headers=stolen)
                assert replayed.status_code == 303, server  # to the login page
                assert replayed.headers["location"].startswith("/dashboard/login")
            pause = thief.post(
                "/dashboard/bins/hello/pause", data={"csrf": _csrf(fleet)}, headers=stolen
            )
            assert pause.status_code == 403
    assert manager.admin_get("/bins").json()["data"][0]["paused"] is False
    # logging in again works: a new session, not the revoked one
    with manager.client(base_url=manager.url) as browser:
        assert _log_in(browser, manager) != copied
        assert browser.get("/dashboard/").status_code == 200


def test_secure_cookies_can_be_forced_behind_a_tls_terminating_proxy(
    bin_manager_factory: BinManagerFactory,
) -> None:
    plain = bin_manager_factory()
    forced = bin_manager_factory(extra_env={"BIN_MANAGER_SECURE_COOKIES": "true"})
    with httpx.Client(timeout=30) as http:
        cookie = http.get(f"{plain.url}/dashboard/login").headers["set-cookie"]
        assert "secure" not in cookie.lower()
        cookie = http.get(f"{forced.url}/dashboard/login").headers["set-cookie"]
        assert "; secure" in cookie.lower()
        assert "httponly" in cookie.lower()
