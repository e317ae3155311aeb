"""GET /api/v1/admin/audit: the audit trail, newest first, a page at a time (docs/api.md).

There is no route that changes or deletes an entry, for anyone: the table is append-only
(audit/trail.py writes it; migration 0012's triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from ansible_proxy.protocol import API_PREFIX, Answer, ok
from ansible_proxy.server.auth.authorize import authorize
from ansible_proxy.server.db import audit
from ansible_proxy.server.deps import ERROR_RESPONSES, DbSession

router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["team"],
    dependencies=[Depends(authorize)],
    responses=ERROR_RESPONSES,
)


class Entry(Answer):
    id: int
    at: str
    actor: str
    actorKind: str
    fingerprint: str | None
    action: str
    outcome: str
    binName: str | None
    target: str | None
    arch: str | None
    sha256: str | None
    address: str
    detail: str | None


class AuditPage(Answer):
    """A page of the trail: the envelope with `next` (the `before` of the next page, null
    on the last one); the next page's URL also in a Link header."""

    code: Literal[0]
    message: Literal["success"]
    data: list[Entry]
    next: int | None


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The audit trail: who changed what, when and from where (paged, newest first)",
)
def audit_trail(
    session: DbSession,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = audit.DEFAULT_LIMIT,
    before: Annotated[
        int | None, Query(ge=1, description="the `next` of the previous page")
    ] = None,
    actor: Annotated[str | None, Query(max_length=128, description="a person or token")] = None,
    bin_name: Annotated[str | None, Query(alias="bin", max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=32, description="publish, pin, …")] = None,
) -> dict[str, Any]:
    rows, following = audit.page(
        session, limit=limit, before=before, actor=actor, bin_name=bin_name, action=action
    )
    if following is not None:
        url = request.url.include_query_params(before=following)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return ok(rows) | {"next": following}
