"""Dashboard sessions: BIN_MANAGER_SECURE_COOKIES marks the cookie Secure."""

from __future__ import annotations

import httpx

from tests.support.server import BinManagerFactory


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
