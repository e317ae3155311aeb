"""The fleet dashboard under /dashboard: server-rendered pages and the admin buttons.

Viewing needs a login with the admin token unless BIN_MANAGER_DASHBOARD_PUBLIC is set;
pin, pause and resume always do. Every form carries a CSRF token checked on POST.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

from ansible_proxy import __version__
from ansible_proxy.server import dashboard_session as sessions
from ansible_proxy.server import dashboard_views as views
from ansible_proxy.server.db import queries
from ansible_proxy.server.deps import AppSettings, DbSession, Now, Pointers
from ansible_proxy.server.inputs import check_arch, check_bin_name, check_sha256, check_text
from ansible_proxy.server.problems import ApiProblem

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
PREFIX = "/dashboard"
SERVER_DIR = Path(__file__).resolve().parent.parent
MESSAGES = {"pinned": "Release pinned.", "paused": "Rollout paused.", "resumed": "Rollout resumed."}


@functools.cache
def templates() -> Environment:
    """The Jinja2 environment; autoescape is on for every template."""
    env = Environment(loader=FileSystemLoader(SERVER_DIR / "templates"), autoescape=True)
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
        request.url.scheme == "https",
    )


CurrentVisitor = Annotated[Visitor, Depends(get_visitor)]


def _set_cookie(response: Response, visitor: Visitor, session: sessions.DashboardSession) -> None:
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
    response = HTMLResponse(body, status_code=status)
    if visitor.fresh:
        _set_cookie(response, visitor, visitor.session)
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/login?next={quote(request.url.path)}", status_code=303)


def _problem(visitor: Visitor, exc: ApiProblem) -> HTMLResponse:
    return render(visitor, "error.html", exc.status, title="Error", message=exc.message)


def _refused(visitor: Visitor) -> HTMLResponse:
    message = "The form was stale or forged (CSRF check failed): reload the page and try again."
    return render(visitor, "error.html", 403, title="Refused", message=message)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get(f"{PREFIX}/static/dashboard.css")
def stylesheet() -> FileResponse:
    return FileResponse(SERVER_DIR / "static" / "dashboard.css", media_type="text/css")


@router.get(f"{PREFIX}/")
def fleet_page(request: Request, visitor: CurrentVisitor, session: DbSession, now: Now) -> Response:
    if not visitor.can_view:
        return _login_redirect(request)
    data = views.fleet(session, now)
    stale_minutes = int(views.STALE_AFTER.total_seconds() // 60)
    return render(visitor, "fleet.html", title="Fleet", stale_minutes=stale_minutes, **data)


@router.get(PREFIX + "/bins/{bin_name}")
def bin_page(
    request: Request, bin_name: str, visitor: CurrentVisitor, session: DbSession, now: Now
) -> Response:
    if not visitor.can_view:
        return _login_redirect(request)
    try:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
    except ApiProblem as exc:
        return _problem(visitor, exc)
    message = MESSAGES.get(request.query_params.get("done", ""))
    data = views.bin_page(session, bin_, now)
    return render(visitor, "bin.html", title=f"Bin {bin_.name}", message=message, bin=data)


@router.get(PREFIX + "/bins/{bin_name}/releases/{arch}/{sha256}")
def release_page(
    request: Request,
    bin_name: str,
    arch: str,
    sha256: str,
    visitor: CurrentVisitor,
    session: DbSession,
    now: Now,
) -> Response:
    if not visitor.can_view:
        return _login_redirect(request)
    try:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        release = queries.find_release(session, bin_, check_sha256(sha256), check_arch(arch))
    except ApiProblem as exc:
        return _problem(visitor, exc)
    if release is None:
        return render(visitor, "error.html", 404, title="Error", message="no such release")
    data = views.release_page(session, bin_, release, now)
    return render(visitor, "release.html", title=f"Release {bin_.name}", release=data)


@router.get(PREFIX + "/nodes/{node_name:path}")
def node_page(
    request: Request, node_name: str, visitor: CurrentVisitor, session: DbSession, now: Now
) -> Response:
    if not visitor.can_view:
        return _login_redirect(request)
    try:
        node = queries.require_node(session, check_text(node_name, "node name"))
    except ApiProblem as exc:
        return _problem(visitor, exc)
    data = views.node_page(session, node, now)
    return render(visitor, "node.html", title=f"Node {node.name}", **data)


@router.get(f"{PREFIX}/activity")
def activity_page(
    request: Request, visitor: CurrentVisitor, session: DbSession, now: Now
) -> Response:
    if not visitor.can_view:
        return _login_redirect(request)
    items = views.activity(session, now)
    return render(visitor, "activity.html", title="Activity", items=items)


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
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = f"{PREFIX}/",
) -> Response:
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return _refused(visitor)
    expected = settings.admin_token.get_secret_value() if settings.admin_token else None
    if expected is None or not sessions.token_ok(expected, token):
        log.warning("dashboard: a login with a wrong admin token was refused")
        error = (
            "Wrong admin token." if expected else "This server has no admin token to log in with."
        )
        return render(
            visitor, "login.html", 401, title="Log in", next=_safe_next(next), error=error
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(response, visitor, sessions.new_session(True, time.time()))  # a new nonce
    log.info("dashboard: an operator logged in")
    return response


@router.post(f"{PREFIX}/logout")
def logout(visitor: CurrentVisitor, csrf: Annotated[str, Form()] = "") -> Response:
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return _refused(visitor)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    _set_cookie(response, visitor, sessions.new_session(False, time.time()))
    return response


def _admin_action(visitor: Visitor, csrf: str) -> Response | None:
    """None when the visitor may act; else the refusal to send."""
    if visitor.fresh or not sessions.csrf_ok(visitor.key, visitor.session, csrf):
        return _refused(visitor)
    if not visitor.admin:
        message = "Log in with the admin token to pin, pause or resume."
        return render(visitor, "error.html", 403, title="Refused", message=message)
    return None


def _done(bin_name: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/bins/{quote(bin_name)}?done={what}", status_code=303)


@router.post(PREFIX + "/bins/{bin_name}/pin")
def pin(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    arch: Annotated[str, Form()] = "",
    sha256: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refusal = _admin_action(visitor, csrf)
    if refusal is not None:
        return refusal
    try:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        canonical = check_arch(arch)
        queries.pin(session, bin_, canonical, check_sha256(sha256), now)
    except ApiProblem as exc:
        return _problem(visitor, exc)
    session.commit()
    pointers.clear()
    log.info("dashboard: pinned %s %s to %s", bin_.name, canonical, sha256[:12])
    return _done(bin_.name, "pinned")


def _set_paused(
    bin_name: str,
    paused: bool,
    visitor: Visitor,
    session: DbSession,
    pointers: Pointers,
    now: datetime,
) -> Response:
    try:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
    except ApiProblem as exc:
        return _problem(visitor, exc)
    queries.set_paused(session, bin_, paused, now)
    session.commit()
    pointers.clear()
    log.info("dashboard: %s %s", "paused" if paused else "resumed", bin_.name)
    return _done(bin_.name, "paused" if paused else "resumed")


@router.post(PREFIX + "/bins/{bin_name}/pause")
def pause(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refusal = _admin_action(visitor, csrf)
    return refusal or _set_paused(bin_name, True, visitor, session, pointers, now)


@router.post(PREFIX + "/bins/{bin_name}/resume")
def resume(
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    pointers: Pointers,
    now: Now,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    refusal = _admin_action(visitor, csrf)
    return refusal or _set_paused(bin_name, False, visitor, session, pointers, now)
