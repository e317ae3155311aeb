"""The dashboard's forms: log in and out, pin a release fleet-wide, pause and resume a bin
(approve and revoke: dashboard/credentials.py).

Every POST checks the form's CSRF token against the session cookie first; pin, pause and
resume also need a logged-in admin. Each action is logged (never the token).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from ansible_proxy.server.dashboard import session as sessions
from ansible_proxy.server.dashboard.render import (
    PREFIX,
    CurrentVisitor,
    Visitor,
    expiry,
    problem,
    refused,
    render,
    set_cookie,
)
from ansible_proxy.server.db import queries
from ansible_proxy.server.db import sessions as revocations
from ansible_proxy.server.deps import (
    AppSettings,
    Caller,
    DbSession,
    Now,
    Pointers,
    Rollouts,
    Throttles,
)
from ansible_proxy.server.inputs import check_arch, check_bin_name, check_sha256
from ansible_proxy.server.problems import ApiProblem
from ansible_proxy.server.services import releases, signatures
from ansible_proxy.server.services.signatures import UNSIGNED_DASHBOARD_PIN

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    ok = target.startswith(f"{PREFIX}/") and "//" not in target and "\\" not in target
    return target if ok else f"{PREFIX}/"


@router.get(f"{PREFIX}/login")
def login_page(visitor: CurrentVisitor, next: str = f"{PREFIX}/") -> Response:
    return render(visitor, "login.html", title="Log in", next=_safe_next(next), error=None)


@router.post(f"{PREFIX}/login")
def login(
    visitor: CurrentVisitor,
    settings: AppSettings,
    caller: Caller,
    throttle: Throttles,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = f"{PREFIX}/",
) -> Response:
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    # The admin API's failed-auth budget (server/throttle.py): no guessing at speed here.
    wait = throttle.failures.retry_after(caller.address)
    if wait is not None:
        error = f"Too many failed logins from this address: try again in {wait} s."
        page = render(
            visitor, "login.html", 429, title="Log in", next=_safe_next(next), error=error
        )
        page.headers["Retry-After"] = str(wait)
        return page
    expected = settings.admin_token.get_secret_value() if settings.admin_token else None
    if expected is None or not sessions.token_ok(expected, token):
        throttle.failures.take(caller.address)
        log.warning("dashboard: a login with a wrong admin token was refused")
        error = (
            "Wrong admin token." if expected else "This server has no admin token to log in with."
        )
        return render(
            visitor, "login.html", 401, title="Log in", next=_safe_next(next), error=error
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, visitor, sessions.new_session(True, time.time()))  # a new nonce
    log.info("dashboard: an operator logged in")
    return response


@router.post(f"{PREFIX}/logout")
def logout(
    visitor: CurrentVisitor, session: DbSession, now: Now, csrf: Annotated[str, Form()] = ""
) -> Response:
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    # Ended on the server, not only in this browser: a copy of the cookie stops working.
    revocations.revoke(session, visitor.session.nonce, expiry(visitor.session), now)
    session.commit()
    log.info("dashboard: an operator logged out")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    set_cookie(response, visitor, sessions.new_session(False, time.time()))
    return response


def _admin_refusal(visitor: Visitor, csrf: str) -> Response | None:
    """None when the visitor may act; else the refusal to send."""
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    if not visitor.admin:
        message = (
            "Log in with the admin token to pin, pause, resume, approve, revoke or steer a rollout."
        )
        return render(visitor, "error.html", 403, title="Refused", message=message)
    return None


def admin_form(visitor: Visitor, csrf: str, act: Callable[[], str]) -> Response:
    """An admin form's POST: the CSRF and admin checks, then `act` (it does the change,
    logs it and returns the page to go to next); a refused input is the error page."""
    refusal = _admin_refusal(visitor, csrf)
    if refusal is not None:
        return refusal
    try:
        target = act()
    except ApiProblem as exc:
        return problem(visitor, exc)
    return RedirectResponse(target, status_code=303)


def _done(bin_name: str, what: str) -> str:
    return f"{PREFIX}/bins/{quote(bin_name)}?done={what}"


@router.post(PREFIX + "/bins/{bin_name}/pin")
def pin(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    ctx: Rollouts,
    settings: AppSettings,
    arch: Annotated[str, Form()] = "",
    sha256: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        # A dashboard holds no signing key: under REQUIRE_SIGNED its pins are refused.
        signatures.require_signed(settings.require_signed, None, UNSIGNED_DASHBOARD_PIN)
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        canonical = check_arch(arch)
        releases.pin(session, pointers, bin_, canonical, check_sha256(sha256), now, ctx)
        log.info("dashboard: pinned %s %s to %s", bin_.name, canonical, sha256[:12])
        return _done(bin_.name, "pinned")

    return admin_form(visitor, csrf, act)


def _set_paused(
    bin_name: str, paused: bool, session: DbSession, pointers: Pointers, now: datetime
) -> Callable[[], str]:
    def act() -> str:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        releases.set_paused(session, pointers, bin_, paused, now)
        log.info("dashboard: %s %s", "paused" if paused else "resumed", bin_.name)
        return _done(bin_.name, "paused" if paused else "resumed")

    return act


@router.post(PREFIX + "/bins/{bin_name}/pause")
def pause(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return admin_form(visitor, csrf, _set_paused(bin_name, True, session, pointers, now))


@router.post(PREFIX + "/bins/{bin_name}/resume")
def resume(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return admin_form(visitor, csrf, _set_paused(bin_name, False, session, pointers, now))
