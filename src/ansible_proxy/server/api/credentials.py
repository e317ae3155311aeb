"""Admin routes of node credentials: pending enrolments, approve, revoke, cluster proxies.

Under /api/v1/admin with the admin token, like api/admin.py; `bin-manager nodes …` and
`bin-manager proxies …` (server/cli/credentials.py) and the dashboard call the same
functions (services/credentials.py, db/credentials.py). Each change clears the credential
cache of this process.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ansible_proxy.protocol import API_PREFIX, ok
from ansible_proxy.server.db import credentials as db
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    DbSession,
    NodeCredentials,
    Now,
    require_admin,
)
from ansible_proxy.server.inputs import check_text
from ansible_proxy.server.problems import BadRequest
from ansible_proxy.server.services import credentials as service

log = logging.getLogger(__name__)
router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ERROR_RESPONSES,
)
PROXY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _conflict(description: str) -> dict[int | str, dict[str, Any]]:
    return {409: ERROR_RESPONSES[400] | {"description": description}}


class Approval(BaseModel):
    """The fingerprint the operator checked (from the agent's log line); optional."""

    fingerprint: str | None = Field(default=None, max_length=64)


class NewProxy(BaseModel):
    name: str = Field(max_length=64, description="[A-Za-z0-9._-]{1,64}")


@router.get("/credentials/pending", summary="Enrolments waiting for approval")
def list_pending(session: DbSession) -> dict[str, Any]:
    return ok(db.pending(session))


@router.get("/credentials/{node_name}", summary="A node name's credential (never the token)")
def show(node_name: str, session: DbSession) -> dict[str, Any]:
    return ok(db.credential_of(session, check_text(node_name, "node name")))


@router.post(
    "/credentials/{node_name}/approve",
    summary="Approve a pending enrolment",
    responses=_conflict("Another request replaced the one checked, or its token is taken"),
)
def approve(
    node_name: str, body: Approval, session: DbSession, nodes: NodeCredentials, now: Now
) -> dict[str, Any]:
    name = check_text(node_name, "node name")
    return ok(service.approve(session, nodes, name, body.fingerprint, now))


@router.post("/credentials/{node_name}/revoke", summary="Revoke a node's credential")
def revoke(node_name: str, session: DbSession, nodes: NodeCredentials, now: Now) -> dict[str, Any]:
    service.revoke(session, nodes, check_text(node_name, "node name"), now)
    return ok(db.credential_of(session, node_name))


@router.get("/proxies", summary="Cluster proxies and how many nodes each owns")
def list_proxies(session: DbSession) -> dict[str, Any]:
    return ok(db.proxies(session))


@router.post(
    "/proxies",
    summary="Create a cluster proxy: its token is shown this once",
    responses=_conflict("A proxy of that name exists (revoked ones keep their name)"),
)
def create_proxy(body: NewProxy, session: DbSession, now: Now) -> dict[str, Any]:
    if PROXY_NAME.fullmatch(body.name) is None:
        raise BadRequest(f"invalid proxy name {body.name!r}: use [A-Za-z0-9._-]{{1,64}}")
    token = secrets.token_urlsafe(32)
    hashed = db.token_hash(token)
    db.create_proxy(session, body.name, hashed, now)
    session.commit()
    log.info("proxy %r created (fingerprint %s)", body.name, db.fingerprint(hashed))
    return ok({"name": body.name, "token": token, "fingerprint": db.fingerprint(hashed)})


@router.post("/proxies/{name}/revoke", summary="Revoke a cluster proxy's token")
def revoke_proxy(name: str, session: DbSession, nodes: NodeCredentials, now: Now) -> dict[str, Any]:
    service.revoke_proxy(session, nodes, check_text(name, "proxy name"), now)
    return ok()
