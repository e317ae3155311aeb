"""The dashboard's forms: pin a release fleet-wide, pause and resume a bin (log in and out:
dashboard/signin.py; approve and revoke: dashboard/credentials.py; rollouts: rollouts.py).

Every form's POST goes through `admin_form`: the CSRF token against the session cookie,
then the right auth/routes.py gives the route, on its bin, for who is logged in (403
naming the right otherwise). Each action is logged and audited (never a secret).
"""

from __future__ import annotations

import logging
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
    problem,
    refused,
    render,
)
from ansible_proxy.server.db import queries
from ansible_proxy.server.deps import (
    AppSettings,
    DbSession,
    Now,
    Pointers,
    Rollouts,
)
from ansible_proxy.server.inputs import check_arch, check_bin_name, check_sha256
from ansible_proxy.server.problems import ApiProblem
from ansible_proxy.server.services import releases, signatures
from ansible_proxy.server.services.signatures import UNSIGNED_DASHBOARD_PIN

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _admin_refusal(visitor: Visitor, csrf: str) -> Response | None:
    """None when the visitor may act; else the refusal to send."""
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return refused(visitor)
    why = visitor.refusal
    if why is not None:
        return render(visitor, "error.html", 403, title="Refused", message=why)
    return None


def admin_form(visitor: Visitor, csrf: str, act: Callable[[], str]) -> Response:
    """A form's POST: the CSRF check and the route's right, then `act` (it does the change,
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
