"""Signed releases' endpoints (issue 18): the agents' GET /bins/{bin}/signature, and the
admin's GET …/signing, GET …/sequence and POST …/signatures (api/admin.py's publish and
pin take a signed statement too).

None of these is on the agents' hot path: an agent asks …/signature only when it is about
to install a release. The agent router is included before api/agent.py's, whose
GET /bins/{bin_name:path} would take `/signature` for part of a bin name; the fast path
(hotpath/fastpath.py) hands such a path on, since "bin/signature" is no bin name.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from ansible_proxy.protocol import API_PREFIX, Envelope, ok
from ansible_proxy.server.api.answers import NextSequence, ReleaseSignature, SignatureAdded, Signing
from ansible_proxy.server.auth.authorize import authorize
from ansible_proxy.server.db import listings, queries
from ansible_proxy.server.db import signatures as stored
from ansible_proxy.server.db.models import Release
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    AppSettings,
    ArchQuery,
    BinName,
    DbSession,
    Now,
    Sessions,
    Sha256Query,
    require_agent,
)
from ansible_proxy.server.inputs import DEFAULT_ARCH, check_arch, check_sha256
from ansible_proxy.server.problems import NotFound
from ansible_proxy.server.services import signatures

agent_router = APIRouter(
    prefix=API_PREFIX,
    tags=["agent"],
    dependencies=[Depends(require_agent)],
    responses=ERROR_RESPONSES,
)
admin_router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    dependencies=[Depends(authorize)],
    responses=ERROR_RESPONSES,
)

NodeNameQuery = Annotated[
    str | None, Query(alias="nodeName", max_length=255, description="ignored")
]


class SignRequest(BaseModel):
    """POST /admin/bins/{bin}/signatures: a statement (canonical JSON) and its signature."""

    model_config = ConfigDict(extra="forbid")

    statement: str = Field(max_length=signatures.MAX_STATEMENT)
    signature: str = Field(max_length=signatures.MAX_SIGNATURE)


def _release(session: Session, name: str, sha256: str, arch: str) -> Release:
    return queries.require_release(session, queries.require_bin(session, name), sha256, arch)


@agent_router.get(
    "/bins/{bin_name:path}/signature",
    response_model=Envelope[ReleaseSignature],
    summary="The signed statement of a release, if any",
)
async def release_signature(
    name: BinName,
    sessions: Sessions,
    sha256: Sha256Query,
    now: Now,
    arch: ArchQuery = DEFAULT_ARCH,
    node_name: NodeNameQuery = None,
) -> dict[str, Any]:
    """The release's statement with the highest sequence and every signature of it, and in
    `statements` every statement of it not expired, highest first (signatures.served); 404
    when the release is unknown or unsigned. The host checks them against TRUSTED_KEYS."""
    wanted, canonical = check_sha256(sha256), check_arch(arch)

    def work() -> list[stored.StoredStatement]:
        with sessions() as session:
            return stored.statements_of(session, _release(session, name, wanted, canonical).id)

    found = await anyio.to_thread.run_sync(work)
    if not found:
        raise NotFound(f"release {wanted} of {name} ({canonical}) is unsigned")
    shown = signatures.served(found, now.replace(tzinfo=UTC).timestamp())
    return ok(
        {
            "binName": name,
            "arch": canonical,
            "sha256": wanted,
            "statement": found[0].statement,  # what agents before `statements` read
            "signatures": list(found[0].signatures),
            "statements": [
                {"statement": one.statement, "signatures": list(one.signatures)} for one in shown
            ],
        }
    )


@admin_router.get(
    "/bins/{bin_name:path}/sequence",
    response_model=Envelope[NextSequence],
    summary="The bin's next signing sequence",
)
def next_sequence(name: BinName, session: DbSession) -> dict[str, Any]:
    """1 for a bin never signed (or never published): what a publisher signs next."""
    bin_ = queries.find_bin(session, name)
    highest = stored.max_sequence(session, bin_.id) if bin_ is not None else 0
    return ok({"binName": name, "nextSequence": highest + 1})


@admin_router.get(
    "/bins/{bin_name:path}/signing",
    response_model=Envelope[Signing],
    summary="What a signer of a release needs",
)
def signing(
    name: BinName, session: DbSession, sha256: Sha256Query, arch: ArchQuery = DEFAULT_ARCH
) -> dict[str, Any]:
    """The release's size, the bin's next sequence, its newest statement and its signers."""
    release = _release(session, name, check_sha256(sha256), check_arch(arch))
    newest = stored.newest_statement(session, release.id)
    return ok(
        {
            "binName": name,
            "arch": release.arch,
            "sha256": release.sha256,
            "size": release.size,
            "nextSequence": stored.max_sequence(session, release.bin_id) + 1,
            "statement": newest[0].statement if newest else None,
            "signers": [
                {
                    "fingerprint": row.key_fingerprint,
                    "kind": row.kind,
                    "sequence": row.sequence,
                    "createdAt": listings.iso(row.created_at),
                }
                for row in stored.all_signers(session, release.id)
            ],
        }
    )


@admin_router.post(
    "/bins/{bin_name:path}/signatures",
    response_model=Envelope[SignatureAdded],
    summary="Sign or co-sign a release",
)
def add_signature(
    name: BinName, body: SignRequest, session: DbSession, settings: AppSettings, now: Now
) -> dict[str, Any]:
    """Store a publisher's signature of a statement about a release already published."""
    done = signatures.sign(
        session, settings.trusted_keys, name, body.statement, body.signature, now
    )
    return ok(
        {
            "binName": name,
            "arch": done.target.arch,
            "sha256": done.target.sha256,
            "sequence": done.sequence,
            "kind": done.kind,
            "fingerprint": done.fingerprint,
            "signatures": done.count,
        }
    )
