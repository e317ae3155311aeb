"""Admin routes of node credentials: pending enrolments (approve, reject), revoke,
cluster proxies, the labels an admin sets on a node, and deleting a node from the fleet.

Under /api/v1/admin with the admin token, like api/admin.py; `bin-manager nodes …` and
`bin-manager proxies …` (server/cli/credentials.py) and the dashboard call the same
functions (services/credentials.py, db/credentials.py). Each change clears the credential
cache of this process.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ansible_proxy.names import format_labels, label_refusal
from ansible_proxy.protocol import API_PREFIX, Done, Envelope, ok
from ansible_proxy.server.api.answers import (
    AdminLabels,
    Credential,
    CredentialShown,
    DeletedNode,
    NewProxyToken,
    ProxyRow,
    Rejected,
)
from ansible_proxy.server.auth.authorize import authorize
from ansible_proxy.server.auth.reserved import reserved_hashes
from ansible_proxy.server.db import credentials as db
from ansible_proxy.server.db import labels
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    AppSettings,
    DbSession,
    Heartbeats,
    NodeCredentials,
    Now,
    Pointers,
    error_answer,
)
from ansible_proxy.server.inputs import check_node_name, check_text
from ansible_proxy.server.problems import BadRequest
from ansible_proxy.server.services import credentials as service
from ansible_proxy.server.services import nodes as node_service

log = logging.getLogger(__name__)
router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    dependencies=[Depends(authorize)],
    responses=ERROR_RESPONSES,
)
PROXY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _conflict(description: str) -> dict[int | str, dict[str, Any]]:
    return {409: error_answer(description)}


class Approval(BaseModel):
    """The fingerprint the operator checked (from the agent's log line); optional."""

    fingerprint: str | None = Field(default=None, max_length=64)


class NewProxy(BaseModel):
    name: str = Field(max_length=64, description="[A-Za-z0-9._-]{1,64}")


class Rejection(BaseModel):
    """Which pending enrolments to drop: exactly one of `nodeNames`, `all`, `olderThanSeconds`."""

    model_config = ConfigDict(extra="forbid")

    nodeNames: list[str] | None = Field(default=None, max_length=1000)
    all: bool = False
    olderThanSeconds: int | None = Field(default=None, ge=0, le=10 * 365 * 86400)


class LabelChange(BaseModel):
    """Labels an admin sets (`set`, k → v) and removes (`remove`, keys) on a node."""

    model_config = ConfigDict(extra="forbid")

    set: dict[str, str] = Field(default_factory=dict, max_length=16)
    remove: list[str] = Field(default_factory=list, max_length=16)


@router.get(
    "/credentials/pending",
    response_model=Envelope[list[Credential]],
    summary="Enrolments waiting for approval",
)
def list_pending(session: DbSession, settings: AppSettings, now: Now) -> dict[str, Any]:
    return ok(db.pending(session, db.pending_since(now, settings.pending_enrolment_hours)))


@router.post(
    "/credentials/pending/reject",
    response_model=Envelope[Rejected],
    summary="Drop pending enrolments: by name, all, or those older than some seconds",
)
def reject_pending(body: Rejection, session: DbSession, now: Now) -> dict[str, Any]:
    """A dropped request leaves no row behind (unless the name holds a credential or a
    revocation, which stay); the node asks again at its next tick."""
    chosen = [body.nodeNames is not None, body.all, body.olderThanSeconds is not None]
    if sum(chosen) != 1:
        raise BadRequest("give exactly one of nodeNames, all (true) or olderThanSeconds")
    names = None if body.nodeNames is None else [check_node_name(n) for n in body.nodeNames]
    before = None
    if body.olderThanSeconds is not None:
        before = now - timedelta(seconds=body.olderThanSeconds)
    rejected = db.reject_pending(session, names, before)
    session.commit()
    log.info("%d pending enrolment(s) rejected", rejected)
    return ok({"rejected": rejected})


@router.get(
    "/credentials/{node_name}",
    response_model=Envelope[CredentialShown],
    summary="A node name's credential (never the token)",
)
def show(node_name: str, session: DbSession) -> dict[str, Any]:
    name = check_text(node_name, "node name")
    shown = db.credential_of(session, name)
    return ok({**shown, "adminLabels": format_labels(labels.admin_labels(session, name))})


@router.post(
    "/credentials/{node_name}/approve",
    response_model=Envelope[Credential],
    summary="Approve a pending enrolment",
    responses=_conflict("Another request replaced the one checked, or its token is taken"),
)
def approve(
    node_name: str,
    body: Approval,
    session: DbSession,
    nodes: NodeCredentials,
    settings: AppSettings,
    now: Now,
) -> dict[str, Any]:
    name = check_text(node_name, "node name")
    since = db.pending_since(now, settings.pending_enrolment_hours)
    db.check_approvable(session, name, since, reserved_hashes(settings))
    return ok(service.approve(session, nodes, name, body.fingerprint, now))


@router.post(
    "/credentials/{node_name}/revoke",
    response_model=Envelope[Credential],
    summary="Revoke a node's credential",
)
def revoke(node_name: str, session: DbSession, nodes: NodeCredentials, now: Now) -> dict[str, Any]:
    service.revoke(session, nodes, check_text(node_name, "node name"), now)
    return ok(db.credential_of(session, node_name))


@router.post(
    "/nodes/{node_name}/labels",
    response_model=Envelope[AdminLabels],
    summary="Set or remove labels an admin gives a node (--canary-label matches these)",
)
def change_labels(
    node_name: str, body: LabelChange, session: DbSession, now: Now
) -> dict[str, Any]:
    """Unlike NODE_LABELS, no node can set these (docs/bin-manager.md "Rollouts"); a name
    may be labelled before its node first calls."""
    name = check_node_name(node_name)
    given = labels.admin_labels(session, name)
    for key in body.remove:
        given.pop(key, None)
    given.update(body.set)
    problem = label_refusal(given)
    if problem is not None:
        raise BadRequest(problem)
    labels.set_admin_labels(session, name, given, now)
    session.commit()
    log.info("admin labels of node %r set: %s", name, ",".join(sorted(given)) or "none")
    return ok({"nodeName": name, "adminLabels": given})


@router.delete(
    "/nodes/{node_name:path}",  # the paths GET /nodes/{node_name:path} takes (admin.py)
    response_model=Envelope[DeletedNode],
    summary="Delete a decommissioned node: its reports, rollout memberships, and credential",
)
def delete_node(
    node_name: str,
    session: DbSession,
    nodes: NodeCredentials,
    heartbeats: Heartbeats,
    pointers: Pointers,
    now: Now,
    keep: Annotated[
        bool,
        Query(
            alias="keepCredential",
            description="keep its credential: its next tick registers it again",
        ),
    ] = False,
) -> dict[str, Any]:
    """Without keepCredential its credential is revoked: it cannot simply come back."""
    name = check_node_name(node_name)
    done = node_service.delete(session, nodes, heartbeats, pointers, name, keep, now)
    return ok(
        {"nodeName": done.node_name, "rollouts": done.rollouts, "credential": done.credential}
    )


@router.get(
    "/proxies",
    response_model=Envelope[list[ProxyRow]],
    summary="Cluster proxies and how many nodes each owns",
)
def list_proxies(session: DbSession) -> dict[str, Any]:
    return ok(db.proxies(session))


@router.post(
    "/proxies",
    response_model=Envelope[NewProxyToken],
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


@router.post(
    "/proxies/{name}/revoke", response_model=Done, summary="Revoke a cluster proxy's token"
)
def revoke_proxy(name: str, session: DbSession, nodes: NodeCredentials, now: Now) -> dict[str, Any]:
    service.revoke_proxy(session, nodes, check_text(name, "proxy name"), now)
    return ok()
