"""What every dashboard page shares: the visitor (session, CSRF, rights) and rendering.

Viewing needs a login with the admin token unless BIN_MANAGER_DASHBOARD_PUBLIC is set;
the admin's forms (pin, pause, resume; a rollout's promote, halt, resume, abort and the
bin's rollout policy) always do. Pages go out with a strict Content-Security-Policy.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

from ansible_proxy import __version__
from ansible_proxy.server.dashboard import session as sessions
from ansible_proxy.server.db import sessions as revocations
from ansible_proxy.server.deps import AppSettings
from ansible_proxy.server.problems import ApiProblem

PREFIX = "/dashboard"
DASHBOARD_DIR = Path(__file__).resolve().parent  # holds templates/ and static/
# Only our own stylesheet and script; no framing (the buttons cannot be clickjacked).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@functools.cache
def templates() -> Environment:
    """The Jinja2 environment; autoescape is on for every template."""
    env = Environment(loader=FileSystemLoader(DASHBOARD_DIR / "templates"), autoescape=True)
    env.filters["short"] = lambda sha: (sha or "")[:12]
    env.filters["q"] = lambda text: quote(str(text), safe="")
    return env


@dataclass(frozen=True)
class Visitor:
    """Who is asking: their session (new ones get a cookie), and what they may do."""

    key: bytes
    session: sessions.DashboardSession
    fresh: bool
    admin: bool
    can_view: bool
    https: bool

    @property
    def csrf(self) -> str:
        return sessions.csrf_token(self.key, self.session)


def _key(request: Request, settings: AppSettings) -> bytes:
    if settings.admin_token is not None:
        return sessions.signing_key(settings.admin_token.get_secret_value())
    state = request.app.state
    if getattr(state, "dashboard_key", None) is None:
        state.dashboard_key = sessions.signing_key(None)
    key: bytes = state.dashboard_key
    return key


async def get_visitor(request: Request, settings: AppSettings) -> Visitor:
    key = _key(request, settings)
    now = time.time()
    session = sessions.decode(key, request.cookies.get(sessions.COOKIE_NAME), now)
    if session is not None and session.admin and await _revoked(request, session):
        session = None  # logged out: a copy of the cookie is worth nothing
    fresh = session is None
    session = session or sessions.new_session(False, now)
    open_admin = settings.insecure_no_auth or settings.admin_token is None
    admin = session.admin or open_admin
    return Visitor(
        key,
        session,
        fresh,
        admin,
        admin or settings.dashboard_public,
        request.url.scheme == "https" or settings.secure_cookies,
    )


CurrentVisitor = Annotated[Visitor, Depends(get_visitor)]


async def _revoked(request: Request, session: sessions.DashboardSession) -> bool:
    def check() -> bool:
        with request.app.state.sessions() as db:
            return revocations.is_revoked(db, session.nonce)

    return await anyio.to_thread.run_sync(check)


def expiry(session: sessions.DashboardSession) -> datetime:
    """When the session's cookie expires, naive UTC as the database stores times."""
    return datetime.fromtimestamp(session.expires, UTC).replace(tzinfo=None)


def set_cookie(response: Response, visitor: Visitor, session: sessions.DashboardSession) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        sessions.encode(visitor.key, session),
        max_age=sessions.SESSION_SECONDS,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=visitor.https,
    )


def render(visitor: Visitor, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page, with the visitor's CSRF token; a new visitor gets their session cookie."""
    body = (
        templates()
        .get_template(name)
        .render(
            csrf=visitor.csrf, admin=visitor.admin, version=__version__, prefix=PREFIX, **context
        )
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if visitor.fresh:
        set_cookie(response, visitor, visitor.session)
    return response


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/login?next={quote(request.url.path)}", status_code=303)


def problem(visitor: Visitor, exc: ApiProblem) -> HTMLResponse:
    return render(visitor, "error.html", exc.status, title="Error", message=exc.message)


def refused(visitor: Visitor) -> HTMLResponse:
    message = "The form was stale or forged (CSRF check failed): reload the page and try again."
    return render(visitor, "error.html", 403, title="Refused", message=message)
