"""The dashboard's audit page: who changed what, when and from where, newest first, a page
at a time, filtered by actor, bin and action (as GET /api/v1/admin/audit). Read-only: no
form here or anywhere changes an entry."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ansible_proxy.server.dashboard.render import PREFIX, CurrentVisitor, login_redirect, render
from ansible_proxy.server.db import audit
from ansible_proxy.server.deps import DbSession

router = APIRouter(include_in_schema=False)
PAGE = 100
FILTERS = ("actor", "bin", "action")


@router.get(f"{PREFIX}/audit")
def audit_page(request: Request, visitor: CurrentVisitor, session: DbSession) -> Response:
    if not visitor.can_view:
        return login_redirect(request, visitor)
    given = {key: request.query_params.get(key, "").strip()[:128] for key in FILTERS}
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    rows, following = audit.page(
        session,
        limit=PAGE,
        before=before,
        actor=given["actor"] or None,
        bin_name=given["bin"] or None,
        action=given["action"] or None,
    )
    kept = {key: value for key, value in given.items() if value}
    next_url = None
    if following is not None:
        next_url = f"{PREFIX}/audit?{urlencode({**kept, 'before': following})}"
    return render(
        visitor, "audit.html", title="Audit", entries=rows, filters=given, next_url=next_url
    )
