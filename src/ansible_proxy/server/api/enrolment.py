"""POST /api/v1/enrol: a node (or a cluster proxy for a node) asks for its name.

Not behind the read credential of the agent routes: a host without credentials must be
able to ask. The rule (docs/security.md "Enrolling, approving and revoking nodes"): the
enrolment token, or a proxy's token, and a name bound to nothing → enrolled (201), a name
bound to another credential → 409; a revoked name only ever becomes pending (202); and
anyone without the enrolment token gets pending (202) whatever the name's state, so that
no one can enumerate names. A node token that is one of the server's own is refused.
Every request takes from its network's enrolment budget; expired requests are dropped.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Response
from starlette.exceptions import HTTPException

from ansible_proxy.protocol import API_PREFIX, Enrolled, Enrolment, Envelope, ok
from ansible_proxy.server.auth import token_ok
from ansible_proxy.server.auth.credentials import NodeAuth
from ansible_proxy.server.auth.reserved import reserved_hashes
from ansible_proxy.server.db import credentials as db
from ansible_proxy.server.db.credentials import Binding, Outcome
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    AppSettings,
    Caller,
    Heartbeats,
    NodeCredentials,
    Now,
    Sessions,
    Throttles,
    error_answer,
)
from ansible_proxy.server.inputs import check_text
from ansible_proxy.server.problems import BadRequest, Unauthorized

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=ERROR_RESPONSES)

_STATUS = {Outcome.ENROLLED: 201, Outcome.ALREADY: 200, Outcome.PENDING: 202}


@router.post(
    "/enrol",
    status_code=201,
    response_model=Envelope[Enrolled],
    summary="Enrol a node: its token becomes its credential (now, or once approved)",
    responses={
        200: {
            "model": Envelope[Enrolled],
            "description": "already enrolled with this very credential",
        },
        202: {"model": Envelope[Enrolled], "description": "pending: an admin must approve it"},
        400: error_answer("bad input, or a nodeToken that is one of the server's tokens"),
        409: error_answer("the enrolment token for a name enrolled with another credential"),
        429: error_answer("too many enrolment requests from this address"),
    },
)
async def enrol(
    body: Enrolment,
    response: Response,
    caller: Caller,
    nodes: NodeCredentials,
    throttle: Throttles,
    settings: AppSettings,
    sessions: Sessions,
    heartbeats: Heartbeats,
    now: Now,
) -> dict[str, Any]:
    throttle.enrolments.check(caller.address)
    throttle.enrolments.take(caller.address)
    for field in ("cpuArch", "osRelease", "nodeName", "binProxyVersion"):
        check_text(getattr(body, field), field)
    trusted, proxy = settings.insecure_no_auth, None
    if caller.token is not None:
        enrolment = settings.enrolment_token
        if enrolment is not None and token_ok(caller.token, enrolment):
            trusted = True
        else:
            principal = await nodes.principal(caller)
            if principal is not None and principal.kind == "proxy":
                trusted, proxy = True, principal.name
            elif principal is None:
                nodes.refuse(caller, Unauthorized("wrong enrolment token"))
    if proxy is None and body.nodeToken is None:
        raise BadRequest("nodeToken is required (only a cluster proxy enrols without one)")
    hashed = db.token_hash(body.nodeToken) if proxy is None and body.nodeToken else None
    if hashed is not None and hashed in reserved_hashes(settings):
        throttle.failures.take(caller.address)  # a guess at a server token: a failure
        raise BadRequest(db.server_token_refusal())
    limit = settings.max_pending_enrolments
    since = db.pending_since(now, settings.pending_enrolment_hours)

    def work() -> tuple[Outcome, Binding]:
        with sessions() as session:
            db.expire_pending(session, since)
            before = db.name_state(session, body.nodeName)
            might_pend = not trusted or before.binding is Binding.REVOKED
            if might_pend and not before.pending and db.pending_count(session) >= limit:
                raise HTTPException(
                    status_code=429,
                    detail=f"{limit} enrolments are waiting for approval already "
                    "(BIN_MANAGER_MAX_PENDING_ENROLMENTS): approve or reject some first",
                    headers={"Retry-After": "60"},
                )
            outcome = db.enrol(session, body, hashed, proxy, trusted, caller.address, now)
            session.commit()
            return outcome, before.binding

    outcome, before = await anyio.to_thread.run_sync(work)
    nodes.forget_name(body.nodeName, hashed)
    shown = db.fingerprint(hashed) if hashed else f"proxy:{proxy}"
    response.status_code = _STATUS[outcome]
    if outcome is Outcome.PENDING:
        log.info("enrolment of %r pending approval (fingerprint %s)", body.nodeName, shown)
    else:
        heartbeats.remember(body.nodeName)
        if outcome is Outcome.ENROLLED:
            log.info("node %r enrolled (fingerprint %s)", body.nodeName, shown)
    status = "pending" if outcome is Outcome.PENDING else "enrolled"
    # Migrate mode only: a name not enrolled may still be written as before (anyone may,
    # so saying so tells nothing); an enrolled or revoked one may not.
    legacy = (
        outcome is Outcome.PENDING and before is Binding.NONE and nodes.mode is NodeAuth.MIGRATE
    )
    return ok(
        {"nodeName": body.nodeName, "status": status, "fingerprint": shown, "legacyWrites": legacy}
    )
