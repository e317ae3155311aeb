"""Admin endpoints under /api/v1/admin (admin token): publish, pin, pause, delete, listings."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ansible_proxy.names import MAX_NODE_NAME
from ansible_proxy.protocol import API_PREFIX, Envelope, Sha256, ok
from ansible_proxy.server.api.answers import (
    BinNode,
    BinSummary,
    DeletedRelease,
    EventRow,
    NodeDetail,
    NodeSummary,
    Paged,
    PauseState,
    Pinned,
    ProgressEntry,
    Published,
    ReleaseRow,
)
from ansible_proxy.server.auth.authorize import authorize
from ansible_proxy.server.db import listings, pages, queries
from ansible_proxy.server.db.models import Release
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    AppSettings,
    ArchQuery,
    BinName,
    DbSession,
    Now,
    Pointers,
    Rollouts,
    Store,
    error_answer,
)
from ansible_proxy.server.inputs import (
    ARCH_NAMES,
    DEFAULT_ARCH,
    check_arch,
    check_node_name,
    check_sha256,
)
from ansible_proxy.server.problems import TooLarge
from ansible_proxy.server.rollouts.superseding import Superseded, before_publish
from ansible_proxy.server.services import releases, signatures
from ansible_proxy.server.services.signatures import UNSIGNED_PIN, UNSIGNED_PUBLISH
from ansible_proxy.signatures import SIGNATURE_HEADER, STATEMENT_HEADER

router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    dependencies=[Depends(authorize)],
    responses={**ERROR_RESPONSES, 413: error_answer("Too large")},
)

OptionalArchQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="x86_64 or aarch64; needed only when several arches have that content",
        json_schema_extra={"enum": list(ARCH_NAMES)},
    ),
]
Sha256Path = Annotated[
    str,
    Path(
        max_length=128,
        description="the release's content, 64 hex digits",
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    ),
]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: error_answer("Still in use: latest, paused, running")
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def node_cursor(
    limit: Annotated[
        int, Query(ge=1, le=pages.MAX_LIMIT, description="nodes per page")
    ] = pages.DEFAULT_LIMIT,
    after: Annotated[
        str | None,
        Query(max_length=MAX_NODE_NAME, description="the `next` of the previous page"),
    ] = None,
    prefix: Annotated[
        str | None, Query(max_length=MAX_NODE_NAME, description="only names starting so")
    ] = None,
) -> pages.Cursor:
    return pages.cursor(limit, after, None, prefix)


NodeCursor = Annotated[pages.Cursor, Depends(node_cursor)]


def paged(page: pages.Page, request: Request, response: Response) -> dict[str, Any]:
    """The envelope with `total` and `next` (the cursor of the next page, or null), and
    the next page's URL in a Link header."""
    if page.next is not None:
        url = request.url.include_query_params(after=page.next)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return ok(page.rows) | {"total": page.total, "next": page.next}


class PinRequest(BaseModel):
    """POST /admin/bins/{bin}/pin: make this earlier release the latest for `arch`."""

    model_config = ConfigDict(extra="forbid")

    sha256: Sha256
    arch: str = DEFAULT_ARCH
    # A signed statement of kind `pin` for exactly this release, and its signature
    # (`bin-manager pin --sign-key`); required with BIN_MANAGER_REQUIRE_SIGNED=1.
    statement: str | None = Field(default=None, max_length=signatures.MAX_STATEMENT)
    signature: str | None = Field(default=None, max_length=signatures.MAX_SIGNATURE)


@router.post(
    "/bins/{bin_name:path}/releases",
    response_model=Envelope[Published],
    openapi_extra=UPLOAD_BODY,
    summary="Publish a release",
)
async def publish(
    name: BinName,
    request: Request,
    session: DbSession,
    store: Store,
    pointers: Pointers,
    settings: AppSettings,
    now: Now,
    ctx: Rollouts,
    arch: ArchQuery = DEFAULT_ARCH,
) -> dict[str, Any]:
    """Stream the raw body to the store, then commit the release and make it latest (its
    staged rollout starts when the bin's policy stages it). A signed statement and its
    signature come in two headers (base64), checked against the upload before the commit."""
    canonical = check_arch(arch)
    signed = signatures.from_headers(
        request.headers.get(STATEMENT_HEADER), request.headers.get(SIGNATURE_HEADER)
    )
    # Before a byte of the body is read: the headers say already.
    signatures.require_signed(settings.require_signed, signed and signed[0], UNSIGNED_PUBLISH)
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"upload of {declared} bytes is larger than the limit of {limit} bytes")
    artifact = await store.receive(request.stream(), limit)

    def commit() -> tuple[Release, Superseded | None]:
        new = signatures.check_upload(
            session, settings.trusted_keys, name, canonical, artifact, signed, now
        )
        ended = before_publish(session, name, canonical, artifact.sha256)
        release = releases.publish(
            session, store, pointers, name, canonical, artifact, now, ctx, signed=new
        )
        return release, ended

    # The file is in place: only now may a row point at it (a refused signature leaves the
    # file an orphan, never served, as a crash here would).
    release, ended = await anyio.to_thread.run_sync(commit)
    data: dict[str, Any] = {
        "binName": name,
        "arch": release.arch,
        "sha256": release.sha256,
        "size": release.size,
        "latest": True,
    }
    if ended is not None:  # a rollout in progress: what this publish ended and withdrew
        data["supersedes"] = ended.to_dict()
    return ok(data)


@router.get("/bins", response_model=Envelope[list[BinSummary]], summary="List bins")
def list_bins(session: DbSession) -> dict[str, Any]:
    return ok(listings.bins(session))


@router.get(
    "/bins/{bin_name:path}/releases",
    response_model=Envelope[list[ReleaseRow]],
    summary="List a bin's releases",
)
def list_releases(name: BinName, session: DbSession) -> dict[str, Any]:
    return ok(listings.releases(session, queries.require_bin(session, name)))


@router.get(
    "/bins/{bin_name:path}/nodes",
    response_model=Paged[BinNode],
    summary="Which node runs which sha of a bin (paged)",
)
def list_bin_nodes(
    name: BinName, session: DbSession, request: Request, response: Response, where: NodeCursor
) -> dict[str, Any]:
    page = listings.bin_nodes(session, queries.require_bin(session, name), where)
    return paged(page, request, response)


@router.get(
    "/bins/{bin_name:path}/progress",
    response_model=Envelope[list[ProgressEntry]],
    summary="Progress reports for a bin",
)
def list_bin_progress(name: BinName, session: DbSession) -> dict[str, Any]:
    return ok(listings.bin_progress(session, queries.require_bin(session, name)))


@router.post(
    "/bins/{bin_name:path}/pin",
    response_model=Envelope[Pinned],
    summary="Make an earlier release the latest",
)
def pin(
    name: BinName,
    body: PinRequest,
    session: DbSession,
    pointers: Pointers,
    settings: AppSettings,
    now: Now,
    ctx: Rollouts,
) -> dict[str, Any]:
    canonical = check_arch(body.arch)
    signatures.require_signed(settings.require_signed, body.statement, UNSIGNED_PIN)
    bin_ = queries.require_bin(session, name)
    new = signatures.check_pin(
        session, settings.trusted_keys, bin_, canonical, body.sha256, body.statement,
        body.signature, now,
    )  # fmt: skip
    releases.pin(session, pointers, bin_, canonical, body.sha256, now, ctx, signed=new)
    return ok({"binName": name, "arch": canonical, "sha256": body.sha256, "latest": True})


@router.delete(
    "/bins/{bin_name:path}/releases/{sha256}",
    response_model=Envelope[DeletedRelease],
    summary="Delete a release that nothing uses; its artifact too unless shared",
    responses=CONFLICT,
)
def delete(
    name: BinName,
    sha256: Sha256Path,
    session: DbSession,
    store: Store,
    pointers: Pointers,
    now: Now,
    arch: OptionalArchQuery = None,
) -> dict[str, Any]:
    """409 while it is the latest, a paused rollout's answer, or run by a node; else gone."""
    canonical = check_arch(arch) if arch and arch.strip() else None
    deleted = releases.delete_release(
        session, store, pointers, name, check_sha256(sha256), canonical, now
    )
    return ok(
        {
            "binName": deleted.bin_name,
            "arch": deleted.arch,
            "sha256": deleted.sha256,
            "size": deleted.size,
            "artifact": deleted.artifact,
        }
    )


@router.post(
    "/bins/{bin_name:path}/pause",
    response_model=Envelope[PauseState],
    summary="Freeze a bin's rollout",
)
def pause(name: BinName, session: DbSession, pointers: Pointers, now: Now) -> dict[str, Any]:
    releases.set_paused(session, pointers, queries.require_bin(session, name), True, now)
    return ok({"binName": name, "paused": True})


@router.post(
    "/bins/{bin_name:path}/resume",
    response_model=Envelope[PauseState],
    summary="Resume a bin's rollout",
)
def resume(name: BinName, session: DbSession, pointers: Pointers, now: Now) -> dict[str, Any]:
    releases.set_paused(session, pointers, queries.require_bin(session, name), False, now)
    return ok({"binName": name, "paused": False})


@router.get("/nodes", response_model=Paged[NodeSummary], summary="List nodes (paged)")
def list_nodes(
    session: DbSession, request: Request, response: Response, where: NodeCursor
) -> dict[str, Any]:
    return paged(listings.nodes(session, where), request, response)


@router.get(
    "/nodes/{node_name:path}",
    response_model=Envelope[NodeDetail],
    summary="A node: info, versions, progress history",
)
def node_detail(node_name: str, session: DbSession) -> dict[str, Any]:
    node = queries.require_node(session, check_node_name(node_name))
    return ok(listings.node_detail(session, node))


@router.get(
    "/events",
    response_model=Envelope[list[EventRow]],
    summary="Operator activity: publish, pin, pause, resume, delete",
)
def list_events(session: DbSession) -> dict[str, Any]:
    return ok(listings.events(session))
