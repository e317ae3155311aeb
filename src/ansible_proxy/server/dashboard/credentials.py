"""The dashboard's enrolments page and its forms: approve or reject a pending node (or
reject every pending request at once), revoke a node's or a cluster proxy's credential
(docs/security.md "Enrolling, approving and revoking"), delete a decommissioned node.

The forms are CSRF-checked admin actions like dashboard/admin.py's, and call the same
functions as the admin API (services/credentials.py): no second implementation.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ansible_proxy.server.auth.reserved import reserved_hashes
from ansible_proxy.server.dashboard.admin import admin_form
from ansible_proxy.server.dashboard.render import (
    PREFIX,
    CurrentVisitor,
    login_redirect,
    render,
)
from ansible_proxy.server.dashboard.view_types import NodeCredential
from ansible_proxy.server.db import credentials as db
from ansible_proxy.server.deps import (
    AppSettings,
    DbSession,
    Heartbeats,
    NodeCredentials,
    Now,
    Pointers,
)
from ansible_proxy.server.inputs import check_node_name, check_text
from ansible_proxy.server.services import credentials as service
from ansible_proxy.server.services import nodes as node_service

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MESSAGES = {
    "approved": "Enrolment approved: the node's next tick goes on with its own token.",
    "rejected": "Pending enrolment rejected: nothing of it is kept; the node may ask again.",
    "rejected-all": "Every pending enrolment rejected: nothing of them is kept.",
    "revoked": "Credential revoked: the node's next write is refused (401).",
    "proxy-revoked": "Proxy revoked: its token no longer works.",
    "node-deleted": "Node deleted from the fleet and its rollouts; its credential is revoked.",
    "node-deleted-kept": "Node deleted from the fleet and its rollouts; its credential is kept: "
    "its next tick registers it again.",
}


def node_credential(session: Session, node_name: str, request: Request) -> NodeCredential:
    """What the node page shows of the node's credential, and the message of a revoke."""
    return {
        "credential": db.credential_of(session, node_name),
        "message": MESSAGES.get(request.query_params.get("done", "")),
    }


@router.get(f"{PREFIX}/enrolments")
def enrolments_page(
    request: Request, visitor: CurrentVisitor, session: DbSession, settings: AppSettings, now: Now
) -> Response:
    if not visitor.can_view:
        return login_redirect(request, visitor)
    return render(
        visitor,
        "enrolments.html",
        title="Enrolments",
        message=MESSAGES.get(request.query_params.get("done", "")),
        pending=db.pending(session, db.pending_since(now, settings.pending_enrolment_hours)),
        expiry_hours=f"{settings.pending_enrolment_hours:g}",
        proxies=db.proxies(session),
    )


@router.post(PREFIX + "/enrolments/{node_name}/approve")
def approve(
    node_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    nodes: NodeCredentials,
    settings: AppSettings,
    now: Now,
    fingerprint: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        name = check_node_name(node_name)
        since = db.pending_since(now, settings.pending_enrolment_hours)
        db.check_approvable(session, name, since, reserved_hashes(settings))
        service.approve(session, nodes, name, fingerprint or None, now)
        log.info("dashboard: approved the enrolment of %r", node_name)
        return f"{PREFIX}/enrolments?done=approved"

    return admin_form(visitor, csrf, act)


@router.post(PREFIX + "/enrolments/{node_name}/reject")
def reject(
    node_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        db.reject_pending(session, [check_node_name(node_name)], None)
        session.commit()
        log.info("dashboard: rejected the enrolment of %r", node_name)
        return f"{PREFIX}/enrolments?done=rejected"

    return admin_form(visitor, csrf, act)


@router.post(PREFIX + "/enrolments-reject-all")
def reject_all(
    visitor: CurrentVisitor, session: DbSession, csrf: Annotated[str, Form()] = ""
) -> Response:

    def act() -> str:
        count = db.reject_pending(session, None, None)
        session.commit()
        log.info("dashboard: rejected every pending enrolment (%d)", count)
        return f"{PREFIX}/enrolments?done=rejected-all"

    return admin_form(visitor, csrf, act)


@router.post(PREFIX + "/nodes/{node_name}/revoke")
def revoke(
    node_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    nodes: NodeCredentials,
    now: Now,
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        service.revoke(session, nodes, check_node_name(node_name), now)
        log.info("dashboard: revoked the credential of %r", node_name)
        return f"{PREFIX}/nodes/{quote(node_name)}?done=revoked"

    return admin_form(visitor, csrf, act)


@router.post(PREFIX + "/nodes/{node_name}/delete")
def delete_node(
    node_name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    nodes: NodeCredentials,
    heartbeats: Heartbeats,
    pointers: Pointers,
    now: Now,
    keep_credential: Annotated[str, Form(max_length=8)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        name = check_node_name(node_name)
        keep = keep_credential == "yes"
        node_service.delete(session, nodes, heartbeats, pointers, name, keep, now)
        log.info("dashboard: deleted node %r (credential %s)", name, "kept" if keep else "revoked")
        return f"{PREFIX}/?done=node-deleted" + ("-kept" if keep else "")

    return admin_form(visitor, csrf, act)


@router.post(PREFIX + "/proxies/{name}/revoke")
def revoke_proxy(
    name: str,
    visitor: CurrentVisitor,
    session: DbSession,
    nodes: NodeCredentials,
    now: Now,
    csrf: Annotated[str, Form()] = "",
) -> Response:

    def act() -> str:
        service.revoke_proxy(session, nodes, check_text(name, "proxy name"), now)
        log.info("dashboard: revoked proxy %r", name)
        return f"{PREFIX}/enrolments?done=proxy-revoked"

    return admin_form(visitor, csrf, act)
