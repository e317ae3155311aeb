"""The dashboard's signed session cookie and CSRF tokens."""

from __future__ import annotations

from ansible_proxy.server.dashboard import session as sessions

KEY = sessions.signing_key("a-long-random-admin-token-for-tests")
NOW = 1_800_000_000.0


def test_a_cookie_round_trips_and_carries_the_login() -> None:
    session = sessions.new_session(True, NOW)
    decoded = sessions.decode(KEY, sessions.encode(KEY, session), NOW + 60)
    assert decoded == session
    assert decoded.admin is True


def test_forged_tampered_expired_or_garbage_cookies_are_no_session() -> None:
    session = sessions.new_session(False, NOW)
    value = sessions.encode(KEY, session)
    payload, signature = value.split(".")
    admin = sessions.encode(KEY, sessions.DashboardSession(session.nonce, True, session.expires))
    assert sessions.decode(KEY, f"{admin.split('.')[0]}.{signature}", NOW) is None
    other_key = sessions.signing_key("another-admin-token-entirely-123")
    assert sessions.decode(other_key, value, NOW) is None
    assert sessions.decode(KEY, value, NOW + sessions.SESSION_SECONDS + 1) is None
    for garbage in ("", "abc", "a.b.c", "x" * 600, f"{payload}.{'0' * 64}"):
        assert sessions.decode(KEY, garbage, NOW) is None


def test_csrf_token_is_bound_to_the_session() -> None:
    one = sessions.new_session(True, NOW)
    two = sessions.new_session(True, NOW)
    token = sessions.csrf_token(KEY, one)
    assert sessions.csrf_ok(KEY, one, token)
    assert not sessions.csrf_ok(KEY, two, token)
    assert not sessions.csrf_ok(KEY, one, "")
    assert not sessions.csrf_ok(KEY, None, token)


def test_without_an_admin_token_each_process_gets_its_own_key() -> None:
    assert sessions.signing_key(None) != sessions.signing_key(None)
    assert sessions.signing_key("same-token-same-key-1234") == sessions.signing_key(
        "same-token-same-key-1234"
    )
