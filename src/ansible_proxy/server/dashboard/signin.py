"""The dashboard's way in: log in (a person by name and password; break-glass: the admin
token with no name), log out (ended on the server), and a person's own password (asked for
before anything else after a one-time password from `bin-manager users add`).

Every login and failed login is in the audit trail and the log, never the password: a
failed login names the person only when the name is one (a password typed into the name
field is not kept). Failed logins take from the address' failed-auth budget (429 once empty).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ansible_proxy.server.audit import trail
from ansible_proxy.server.auth import passwords
from ansible_proxy.server.auth.actors import ADMIN_TOKEN, Actor, ActorKind
from ansible_proxy.server.auth.authorize import Team
from ansible_proxy.server.auth.lookups import grant_of
from ansible_proxy.server.dashboard import session as sessions
from ansible_proxy.server.dashboard.render import (
    PREFIX,
    CurrentVisitor,
    Visitor,
    expiry,
    refused,
    render,
    set_cookie,
)
from ansible_proxy.server.db import audit, people
from ansible_proxy.server.db import sessions as revocations
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.db.team import User
from ansible_proxy.server.deps import AppSettings, Caller, DbSession, Now, Sessions, Throttles

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def safe_next(target: str) -> str:
    ok = target.startswith(f"{PREFIX}/") and "//" not in target and "\\" not in target
    return target if ok else f"{PREFIX}/"


def _login_page(
    visitor: Visitor, next: str, status: int = 200, error: str | None = None
) -> Response:
    return render(visitor, "login.html", status, title="Log in", next=safe_next(next), error=error)


def _actor(user: User) -> Actor:
    return Actor(ActorKind.USER, user.name, grant_of(user.role, user.bins))


@router.get(f"{PREFIX}/login")
def login_page(visitor: CurrentVisitor, next: str = f"{PREFIX}/") -> Response:
    return _login_page(visitor, next)


@router.post(f"{PREFIX}/login")
def login(
    visitor: CurrentVisitor,
    settings: AppSettings,
    caller: Caller,
    throttle: Throttles,
    sessions_: Sessions,
    team: Team,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    token: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",  # before people
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = f"{PREFIX}/",
) -> Response:
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    # The admin API's failed-auth budget (limits/throttle.py): no guessing at speed here.
    wait = throttle.failures.retry_after(caller.address)
    if wait is not None:
        error = f"Too many failed logins from this address: try again in {wait} s."
        page = _login_page(visitor, next, 429, error)
        page.headers["Retry-After"] = str(wait)
        return page
    name = name.strip()
    if name:
        return _person_login(visitor, caller, throttle, sessions_, team, name, password, next)
    expected = settings.admin_token.get_secret_value() if settings.admin_token else None
    given = token or password
    if expected is None or not given or not sessions.token_ok(expected, given):
        throttle.failures.take(caller.address)
        _failed(sessions_, caller.address, None, "wrong admin token")
        log.warning("dashboard: a login with a wrong admin token was refused")
        error = (
            "Wrong admin token." if expected else "This server has no admin token to log in with."
        )
        return _login_page(visitor, next, 401, error)
    trail.record(sessions_, audit.entry(ADMIN_TOKEN, "login", caller.address, stored_now()))
    log.info("dashboard: logged in with the admin token (break-glass)")
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(response, visitor, sessions.new_session(True, time.time()))  # a new nonce
    return response


def _person_login(
    visitor: Visitor,
    caller: Caller,
    throttle: Throttles,
    sessions_: Sessions,
    team: Team,
    name: str,
    password: str,
    next: str,
) -> Response:
    with sessions_() as db:
        user = people.find_user(db, name) if people.USER_NAME.fullmatch(name) else None
        matches = passwords.verify(user.password_hash if user else None, password)
        if user is None or not matches or user.disabled_at is not None:
            throttle.failures.take(caller.address)
            why = "wrong password" if user is not None else "no such person"
            if user is not None and matches:
                why = "disabled"
            _failed(sessions_, caller.address, user.name if user else None, why)
            log.warning("dashboard: a failed login (%s)", why)
            if why == "disabled":
                error = "This person is disabled: ask an admin (bin-manager users enable)."
            else:
                error = "Wrong name or password."
            return _login_page(visitor, next, 401, error)
        user.last_login_at = stored_now()
        trail.begin(trail.Change(_actor(user), "login", caller.address, target=user.name))
        db.commit()
    log.info("dashboard: %s logged in", user.name)
    target = f"{PREFIX}/password?next={safe_next(next)}" if user.must_change else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    fresh = sessions.new_session(False, time.time(), user.name, user.session_epoch)
    set_cookie(response, visitor, fresh)
    return response


def _failed(sessions_: Sessions, address: str, name: str | None, why: str) -> None:
    entry = audit.entry(
        None,
        "login",
        address,
        stored_now(),
        outcome="failed",
        name=name or "(unknown name)",
        kind="user" if name else "unknown",
        target=name,
        detail=why,
    )
    trail.record(sessions_, entry)


@router.post(f"{PREFIX}/logout")
def logout(
    visitor: CurrentVisitor, session: DbSession, now: Now, csrf: Annotated[str, Form()] = ""
) -> Response:
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    # Ended on the server, not only in this browser: a copy of the cookie stops working.
    revocations.revoke(session, visitor.session.nonce, expiry(visitor.session), now)
    session.commit()
    log.info("dashboard: %s logged out", visitor.session.user or "an operator")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    set_cookie(response, visitor, sessions.new_session(False, time.time()))
    return response


@router.get(f"{PREFIX}/password")
def password_page(request: Request, visitor: CurrentVisitor, next: str = f"{PREFIX}/") -> Response:
    if visitor.fresh or visitor.session.user is None:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)
    return _password_page(visitor, next)


def _password_page(
    visitor: Visitor, next: str, status: int = 200, error: str | None = None
) -> Response:
    return render(
        visitor,
        "password.html",
        status,
        title="Your password",
        next=safe_next(next),
        error=error,
        person=visitor.session.user,
        due=visitor.password_due,
    )


@router.post(f"{PREFIX}/password")
def change_password(
    visitor: CurrentVisitor,
    session: DbSession,
    caller: Caller,
    throttle: Throttles,
    team: Team,
    current: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    new: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    again: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = f"{PREFIX}/",
) -> Response:
    """The person's own password: the current one (or the one-time one), then a new one
    twice. Every other session of theirs ends."""
    name = visitor.session.user
    if visitor.fresh or name is None or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    user = people.find_user(session, name)
    if user is None or user.disabled_at is not None:
        return refused(visitor)
    if not passwords.verify(user.password_hash, current):
        throttle.failures.take(caller.address)
        return _password_page(visitor, next, 401, "The current password is wrong.")
    why = passwords.refusal(name, new)
    if why is None and new != again:
        why = "The two new passwords differ."
    if why is None and passwords.verify(user.password_hash, new):
        why = "Choose a password other than the one you were given."
    if why is not None:
        return _password_page(visitor, next, 400, why)
    user.password_hash = passwords.hash_password(new)
    user.must_change = False
    people.end_sessions(user)
    trail.begin(trail.Change(_actor(user), "change-password", caller.address, target=user.name))
    session.commit()
    team.forget()
    log.info("dashboard: %s chose a new password", name)
    response = RedirectResponse(safe_next(next), status_code=303)
    fresh = sessions.new_session(False, time.time(), user.name, user.session_epoch)
    set_cookie(response, visitor, fresh)
    return response
