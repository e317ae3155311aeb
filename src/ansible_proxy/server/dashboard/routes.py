"""The fleet dashboard's pages under /dashboard (read-only; the buttons post to
dashboard/admin.py, credentials.py and rollouts.py, included here): fleet, bin, release,
node, activity (and audit.py's audit page; signin.py: log in and out, a password).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from ansible_proxy.server.dashboard import admin as dashboard_admin
from ansible_proxy.server.dashboard import audit as dashboard_audit
from ansible_proxy.server.dashboard import credentials as dashboard_credentials
from ansible_proxy.server.dashboard import rollouts as dashboard_rollouts
from ansible_proxy.server.dashboard import signin as dashboard_signin
from ansible_proxy.server.dashboard import views
from ansible_proxy.server.dashboard.render import (
    DASHBOARD_DIR,
    PREFIX,
    CurrentVisitor,
    login_redirect,
    problem,
    render,
)
from ansible_proxy.server.db import pages, queries
from ansible_proxy.server.deps import DbSession, Now, Rollouts
from ansible_proxy.server.inputs import check_arch, check_bin_name, check_node_name, check_sha256
from ansible_proxy.server.problems import ApiProblem

router = APIRouter(include_in_schema=False)
STATIC_TYPES = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
MESSAGES = {
    "pinned": "Release pinned.",
    "paused": "Rollout paused.",
    "resumed": "Rollout resumed.",
    **dashboard_rollouts.MESSAGES,
}


def _cursor(request: Request) -> pages.Cursor:
    """Which page of nodes (?after= or ?before=, ?prefix=, ?limit=); 422 when refused."""
    query = request.query_params
    return pages.cursor(
        query.get("limit"), query.get("after"), query.get("before"), query.get("prefix")
    )


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get(PREFIX + "/static/{name}")
def static_file(name: str) -> Response:
    if name not in STATIC_TYPES:
        return Response("no such file", status_code=404, media_type="text/plain")
    return FileResponse(DASHBOARD_DIR / "static" / name, media_type=STATIC_TYPES[name])


@router.get(f"{PREFIX}/")
def fleet_page(request: Request, visitor: CurrentVisitor, session: DbSession, now: Now) -> Response:
    if not visitor.can_view:
        return login_redirect(request, visitor)
    try:
        data = views.fleet(session, now, _cursor(request))
    except ApiProblem as exc:
        return problem(visitor, exc)
    stale_minutes = int(views.STALE_AFTER.total_seconds() // 60)
    rollouts = dashboard_rollouts.fleet_badges(session)
    message = dashboard_credentials.MESSAGES.get(request.query_params.get("done", ""))
    return render(
        visitor,
        "fleet.html",
        title="Fleet",
        message=message,
        stale_minutes=stale_minutes,
        rollouts=rollouts,
        **data,
    )


@router.get(PREFIX + "/bins/{bin_name}")
def bin_page(
    request: Request,
    bin_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    ctx: Rollouts,
    now: Now,
) -> Response:
    if not visitor.can_view:
        return login_redirect(request, visitor)
    try:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        where = _cursor(request)
    except ApiProblem as exc:
        return problem(visitor, exc)
    message = MESSAGES.get(request.query_params.get("done", ""))
    data = views.bin_page(session, bin_, now, where)
    rollout = dashboard_rollouts.bin_rollouts(session, ctx, bin_, now)
    return render(
        visitor, "bin.html", title=f"Bin {bin_.name}", message=message, bin=data, rollout=rollout
    )


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
        return login_redirect(request, visitor)
    try:
        bin_ = queries.require_bin(session, check_bin_name(bin_name))
        release = queries.find_release(session, bin_, check_sha256(sha256), check_arch(arch))
        where = _cursor(request)
    except ApiProblem as exc:
        return problem(visitor, exc)
    if release is None:
        return render(visitor, "error.html", 404, title="Error", message="no such release")
    data = views.release_page(session, bin_, release, now, where)
    return render(visitor, "release.html", title=f"Release {bin_.name}", release=data)


@router.get(PREFIX + "/nodes/{node_name:path}")
def node_page(
    request: Request, node_name: str, visitor: CurrentVisitor, session: DbSession, now: Now
) -> Response:
    if not visitor.can_view:
        return login_redirect(request, visitor)
    try:
        node = queries.require_node(session, check_node_name(node_name))
    except ApiProblem as exc:
        return problem(visitor, exc)
    data = views.node_page(session, node, now)
    credential = dashboard_credentials.node_credential(session, node.name, request)
    return render(visitor, "node.html", title=f"Node {node.name}", **data, **credential)


@router.get(f"{PREFIX}/activity")
def activity_page(
    request: Request, visitor: CurrentVisitor, session: DbSession, now: Now
) -> Response:
    if not visitor.can_view:
        return login_redirect(request, visitor)
    items = views.activity(session, now)
    return render(visitor, "activity.html", title="Activity", items=items)


router.include_router(dashboard_signin.router)
router.include_router(dashboard_admin.router)
router.include_router(dashboard_audit.router)
router.include_router(dashboard_credentials.router)
router.include_router(dashboard_rollouts.router)
