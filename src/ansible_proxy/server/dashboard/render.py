"""What every dashboard page shares: the visitor (session, CSRF, rights) and rendering.

A visitor logs in as a person (name and password) or, break-glass, with the admin token.
Viewing needs a login unless BIN_MANAGER_DASHBOARD_PUBLIC is set; each form needs the
right auth/routes.py gives its route, on its bin (`Visitor.refusal`, checked by
dashboard/admin.admin_form), whatever the page showed. A person's session ends when they
log out, are disabled or get a new password (their epoch moves on; other processes see it
within auth/lookups.py's ttl). Pages go out with a strict Content-Security-Policy.
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
from ansible_proxy.server.audit import trail
from ansible_proxy.server.auth.actors import ADMIN_TOKEN, ANYONE, Actor, ActorKind
from ansible_proxy.server.auth.authorize import Team, bin_of, route_rule, target_of
from ansible_proxy.server.auth.rights import Right
from ansible_proxy.server.auth.routes import Rule
from ansible_proxy.server.dashboard import session as sessions
from ansible_proxy.server.db import sessions as revocations
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.deps import AppSettings, Caller
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
    """Who is asking: their session (new ones get a cookie), who they are logged in as
    (`actor`; None: nobody, or a person who must first choose a password), and the rule
    of the route they called (auth/routes.py) on the bin its path names."""

    key: bytes
    session: sessions.DashboardSession
    fresh: bool
    actor: Actor | None
    can_view: bool
    https: bool
    rule: Rule | None = None
    bin_name: str | None = None
    password_due: bool = False  # a person logged in with a one-time password

    @property
    def csrf(self) -> str:
        return sessions.csrf_token(self.key, self.session)

    def can(self, right: str, bin_name: str | None = None) -> bool:
        """For templates: show a form only to who may use it (the route checks anyway)."""
        return self.actor is not None and self.actor.may(Right(right), bin_name)

    @property
    def refusal(self) -> str | None:
        """None when the visitor may use this route; else why not (a 403 page)."""
        if self.rule is None:
            return "No right is defined for this form: refused."
        if self.actor is None:
            return "Log in to do this: your role decides which buttons work (docs/security.md)."
        return self.actor.refusal(self.rule.right, self.bin_name)

    @property
    def who(self) -> str | None:
        """The header's "logged in as" (None: nobody)."""
        if self.actor is None:
            return None
        if self.actor.kind is ActorKind.USER:
            return f"{self.actor.name} · {self.actor.grant.describe()}"
        return "admin token (break-glass)" if self.actor is ADMIN_TOKEN else None


def _key(request: Request, settings: AppSettings) -> bytes:
    if settings.admin_token is not None:
        return sessions.signing_key(settings.admin_token.get_secret_value())
    state = request.app.state
    if getattr(state, "dashboard_key", None) is None:
        state.dashboard_key = sessions.signing_key(None)
    key: bytes = state.dashboard_key
    return key


async def get_visitor(
    request: Request, settings: AppSettings, team: Team, caller: Caller
) -> Visitor:
    key = _key(request, settings)
    now = time.time()
    session = sessions.decode(key, request.cookies.get(sessions.COOKIE_NAME), now)
    if session is not None and session.signed_in and await _revoked(request, session):
        session = None  # logged out: a copy of the cookie is worth nothing
    actor: Actor | None = None
    password_due = False
    if session is not None and session.user is not None:
        known, row = team.cached_user(session.user)
        if not known:
            row = await anyio.to_thread.run_sync(team.user, session.user)
        if row is None or row.disabled or row.epoch != session.epoch:
            session = None  # disabled, or a new password since: signed out everywhere
        elif row.must_change:
            password_due = True
        else:
            actor = row.actor()
    elif session is not None and session.admin:
        actor = ADMIN_TOKEN
    if settings.insecure_no_auth or settings.admin_token is None:
        actor = ANYONE
    fresh = session is None
    session = session or sessions.new_session(False, now)
    visitor = Visitor(
        key,
        session,
        fresh,
        actor,
        (actor is not None and actor.may(Right.READ)) or settings.dashboard_public,
        request.url.scheme == "https" or settings.secure_cookies,
        route_rule(request),
        bin_of(request),
        password_due,
    )
    await _audit(request, visitor, caller.address)
    return visitor


async def _audit(request: Request, visitor: Visitor, address: str) -> None:
    """A form its visitor may use starts its audit entry (audit/trail.py); one a logged-in
    visitor may not use is recorded as refused (admin_form answers 403)."""
    rule = visitor.rule
    action = rule.action_of(request.path_params) if rule is not None else None
    if rule is None or action is None or visitor.actor is None:
        return
    change = trail.Change(
        visitor.actor, action, address, bin_name=visitor.bin_name, target=target_of(request)
    )
    if visitor.refusal is None:
        trail.begin(change)
        return
    entry = change.entry(stored_now())
    entry.outcome, entry.detail = "refused", f"lacks {rule.right.value}"
    await anyio.to_thread.run_sync(trail.record, request.app.state.sessions, entry)


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
            csrf=visitor.csrf,
            can=visitor.can,
            who=visitor.who,
            signed_in=visitor.session.signed_in and not visitor.fresh,
            version=__version__,
            prefix=PREFIX,
            **context,
        )
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if visitor.fresh:
        set_cookie(response, visitor, visitor.session)
    return response


def login_redirect(request: Request, visitor: Visitor | None = None) -> RedirectResponse:
    """To the login page, or to choose a password first after a one-time one."""
    page = "password" if visitor is not None and visitor.password_due else "login"
    return RedirectResponse(f"{PREFIX}/{page}?next={quote(request.url.path)}", status_code=303)


def problem(visitor: Visitor, exc: ApiProblem) -> HTMLResponse:
    return render(visitor, "error.html", exc.status, title="Error", message=exc.message)


def refused(visitor: Visitor) -> HTMLResponse:
    message = "The form was stale or forged (CSRF check failed): reload the page and try again."
    return render(visitor, "error.html", 403, title="Refused", message=message)
