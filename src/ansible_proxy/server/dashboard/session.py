"""The dashboard's session cookie and CSRF tokens, signed with HMAC-SHA256.

The cookie holds a random nonce, who logged in (the admin token, or a person by name with
their session epoch: a person's sessions all end when db/team.User.session_epoch moves on),
and an expiry; the CSRF token of every form is an HMAC of that nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE_NAME = "bm_dashboard"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class DashboardSession:
    """One visitor: `nonce` ties the CSRF token to the cookie; `admin` after a login with
    the admin token, `user` (and the epoch it was signed in) after a person's login."""

    nonce: str
    admin: bool
    expires: int
    user: str | None = None
    epoch: int = 0

    @property
    def signed_in(self) -> bool:
        return self.admin or self.user is not None


def signing_key(admin_token: str | None) -> bytes:
    """Derived from the admin token (sessions survive restarts), else random per process."""
    if admin_token:
        return hmac.new(
            admin_token.encode(), b"bin-manager dashboard session v1", "sha256"
        ).digest()
    return secrets.token_bytes(32)


def new_session(
    admin: bool, now: float, user: str | None = None, epoch: int = 0
) -> DashboardSession:
    return DashboardSession(
        secrets.token_urlsafe(18), admin, int(now) + SESSION_SECONDS, user, epoch
    )


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def encode(key: bytes, session: DashboardSession) -> str:
    """The cookie value: base64url(JSON).hex-signature."""
    fields: dict[str, object] = {"n": session.nonce, "a": session.admin, "e": session.expires}
    if session.user is not None:
        fields |= {"u": session.user, "g": session.epoch}
    body = json.dumps(fields)
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_sign(key, payload.encode())}"


def decode(key: bytes, value: str | None, now: float) -> DashboardSession | None:
    """The session in a cookie value, or None when absent, forged, malformed or expired."""
    if not value or value.count(".") != 1 or len(value) > 512:
        return None
    payload, signature = value.split(".")
    if not hmac.compare_digest(signature, _sign(key, payload.encode())):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        user = data.get("u")
        session = DashboardSession(
            str(data["n"]),
            data["a"] is True,
            int(data["e"]),
            user if isinstance(user, str) else None,
            int(data.get("g", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None


def csrf_token(key: bytes, session: DashboardSession) -> str:
    return _sign(key, f"csrf|{session.nonce}".encode())


def csrf_ok(key: bytes, session: DashboardSession | None, given: str) -> bool:
    """True when `given` is the CSRF token of this visitor's session."""
    if session is None or not given:
        return False
    return hmac.compare_digest(given, csrf_token(key, session))


def token_ok(expected: str, given: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
