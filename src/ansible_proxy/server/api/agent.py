"""The agent endpoints (the wire contract, docs/api.md): keepalive, bins, progress, downloads.

GET /keepalive, GET /bins and GET /bins/{bin} are answered first, when its cache can, by
the fast path in server/hotpath/fastpath.py, byte for byte as here: change them together.
A new GET route under /keepalive or /bins must be reviewed against it (`SHADOWED_ROUTES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import (
    API_PREFIX,
    NODE_NAME_PATTERN,
    BinReport,
    Done,
    Envelope,
    LatestBin,
    LatestBins,
    NodeInfo,
    NodeStatus,
    ProgressReport,
    ok,
)
from ansible_proxy.server.db import progress, queries
from ansible_proxy.server.db.credentials import Binding
from ansible_proxy.server.db.models import Bin, Node, Release
from ansible_proxy.server.deps import (
    ERROR_RESPONSES,
    AppSettings,
    BinName,
    Caller,
    Heartbeats,
    NodeCredentials,
    Now,
    Pointers,
    Rollouts,
    Sessions,
    Store,
    Writes,
    require_agent,
)
from ansible_proxy.server.hotpath import batch
from ansible_proxy.server.hotpath.pointers import PointerCache, latest_data, resolve
from ansible_proxy.server.inputs import (
    ARCH_NAMES,
    MAX_ARCH_QUERY,
    MAX_PROCESSING_TIME,
    check_node_name,
    check_sha256,
    check_text,
    choose_arch,
)
from ansible_proxy.server.problems import BadRequest, NotFound
from ansible_proxy.server.rollouts import members
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.storage.artifacts import ArtifactStore
from ansible_proxy.server.storage.downloads import NOT_CACHEABLE, accel_response, artifact_response
from ansible_proxy.server.writepath.writes import WriteBatcher

router = APIRouter(
    prefix=API_PREFIX,
    tags=["agent"],
    dependencies=[Depends(require_agent)],
    responses=ERROR_RESPONSES,
)

# Documented as a pattern, checked in code (check_node_name): one clear 422 message.
_NODE_NAME_QUERY = Query(
    alias="nodeName",
    description="the asking node",
    json_schema_extra={"pattern": NODE_NAME_PATTERN},
)
NodeNameQuery = Annotated[str | None, _NODE_NAME_QUERY]
RequiredNodeName = Annotated[str, _NODE_NAME_QUERY]
# Documented as enum/pattern, checked in code: a bad value gets 400 with a clear message.
ArchQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_ARCH_QUERY,
        description="x86_64 or aarch64 (amd64, arm64 accepted)",
        json_schema_extra={"enum": list(ARCH_NAMES)},
    ),
]
Sha256Query = Annotated[
    str | None,
    Query(
        max_length=128,
        description="exact content wanted",
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    ),
]
IfNoneMatch = Annotated[str | None, Header(include_in_schema=False)]


PLAIN_SHA: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "sha256"}
}
BINARY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "the binary"}
}
# A download's route, registered for GET and HEAD apart (one OpenAPI operation id each).
BINARY_ROUTE: dict[str, Any] = {"responses": BINARY, "response_class": Response}


@router.get("/keepalive", response_model=Envelope[NodeStatus], summary="Is this node known?")
async def keepalive_status(
    heartbeats: Heartbeats,
    now: Now,
    node_name: RequiredNodeName,
    caller: Caller,
    nodes: NodeCredentials,
) -> dict[str, Any]:
    """Every node asks this every tick: answered from memory when the node is known.

    It refreshes the node's last seen, so it is a write: the node's credential (or its
    proxy's) when the node is enrolled or node auth is required.
    """
    name = check_node_name(node_name)
    await nodes.require_write(caller, name)
    if not await heartbeats.touch(name, now):
        raise NotFound(f"unknown node {name!r}: it must POST /api/v1/keepalive first")
    return ok({"nodeName": name, "status": "active"})


@router.post("/keepalive", response_model=Done, summary="Register or update a node")
async def keepalive_register(
    info: NodeInfo,
    writes: Writes,
    now: Now,
    heartbeats: Heartbeats,
    caller: Caller,
    nodes: NodeCredentials,
) -> dict[str, Any]:
    """A cluster proxy's registration of a name bound to nothing enrols it as its own."""
    for field in ("cpuArch", "osRelease", "nodeName", "binProxyVersion"):
        check_text(getattr(info, field), field)
    principal = await nodes.principal(caller)
    if (
        principal is not None
        and principal.kind == "proxy"
        and (await nodes.state(info.nodeName)).binding is Binding.NONE
    ):
        await nodes.enrol_for_proxy(principal, info)
    await nodes.require_write(caller, info.nodeName)
    await writes.submit(lambda session: queries.register_node(session, info, now))
    heartbeats.remember(info.nodeName)
    return ok()


@router.post(
    "/bins/{bin_name:path}/progress", response_model=Done, summary="Report progress of an upgrade"
)
async def report_progress(
    name: BinName,
    report: ProgressReport,
    writes: Writes,
    now: Now,
    caller: Caller,
    nodes: NodeCredentials,
    rollouts: Rollouts,
) -> dict[str, Any]:
    """One event of the node's history; `reason` (optional, one line) says who and why,
    `cause` (optional, with `failed`) whose failure it is: release, host or refused.

    A staged rollout counts it (server/rollouts/members.py): the write rule has accepted
    the caller as this node (its own credential, or its cluster proxy's).
    """
    _check_body_bin(name, report.binName)
    if report.processingTime > MAX_PROCESSING_TIME:
        raise BadRequest(f"processingTime {report.processingTime} is not a plausible duration")
    await nodes.require_write(caller, report.nodeName)  # NodeName: checked by the model

    def record(session: Session, bin_: Bin, node: Node) -> None:
        progress.add_progress(session, bin_, node, report, now)
        status, reason, cause = report.status.value, report.reason or None, report.cause
        members.note_progress(
            session, rollouts, bin_, node, report.targetHash, status, reason, now, cause
        )

    await _record(writes, name, report.nodeName, record)
    return ok()


@router.get(
    "/bins",
    # The body is built (and cached) by hotpath/batch.py, never by this model: it documents it.
    response_model=Envelope[LatestBins],
    summary="The sha256 of every bin this node should run (batch poll)",
    responses={304: {"description": "unchanged since the ETag in If-None-Match"}},
)
async def latest_all_for_node(
    sessions: Sessions,
    pointers: Pointers,
    arch: ArchQuery = None,
    node_name: NodeNameQuery = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """`{"arch", "bins": {name: sha256}}`; bins with no release for the arch are left out.

    `withdrawn: {name: [sha256, …]}` is added only for bins a pin left newer releases of.
    """
    answer = await batch.batch_for_node(sessions, pointers, arch, node_name)
    headers = {"ETag": answer.etag, "Cache-Control": "no-cache"}
    if batch.matches(answer.etag, if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


@router.get(
    "/bins/{bin_name:path}",
    response_model=Envelope[LatestBin],
    summary="The sha256 this node should run",
)
async def latest_for_node(
    name: BinName,
    sessions: Sessions,
    pointers: Pointers,
    arch: ArchQuery = None,
    node_name: NodeNameQuery = None,
) -> dict[str, Any]:
    """`{"sha256", "version": "latest"}`, and `withdrawn` when a pin left newer releases."""
    target = await resolve(sessions, pointers, name, arch, node_name)
    return ok(latest_data(target.sha256, target.withdrawn))


@router.post("/bins/{bin_name:path}", response_model=Done, summary="Report what this node now runs")
async def report_running(
    name: BinName,
    report: BinReport,
    writes: Writes,
    now: Now,
    caller: Caller,
    nodes: NodeCredentials,
    rollouts: Rollouts,
) -> dict[str, Any]:
    _check_body_bin(name, report.binName)
    version = check_text(report.version, "version")
    await nodes.require_write(caller, report.nodeName)  # NodeName: checked by the model

    def record(session: Session, bin_: Bin, node: Node) -> None:
        queries.report_bin(session, bin_, node, report.sha256, version, now)
        members.note_running(session, rollouts, bin_, node, report.sha256, now)

    await _record(writes, name, report.nodeName, record)
    return ok()


async def _record(
    writes: WriteBatcher,
    bin_name: str,
    node_name: str,
    record: Callable[[Session, Bin, Node], None],
) -> None:
    """One write about (bin, node), both known, in the next group commit."""

    def change(session: Session) -> None:
        bin_ = queries.require_bin(session, bin_name)
        record(session, bin_, queries.require_node(session, node_name))

    await writes.submit(change)


def _check_body_bin(path_name: str, body_name: str) -> None:
    if body_name != path_name:
        raise BadRequest(
            f"binName {body_name!r} in the body does not match the URL's {path_name!r}"
        )


@router.get("/download/{bin_name:path}", **BINARY_ROUTE, summary="Download")
@router.head("/download/{bin_name:path}", **BINARY_ROUTE, summary="Download: the headers only")
async def download(
    name: BinName,
    sessions: Sessions,
    pointers: Pointers,
    store: Store,
    settings: AppSettings,
    sha256: Sha256Query = None,
    arch: ArchQuery = None,
    node_name: NodeNameQuery = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Exactly `?sha256=` (cacheable forever), else the latest for this node and arch."""
    if sha256 is None:
        return await _download_latest(
            sessions, pointers, store, settings, name, arch, node_name, if_none_match
        )
    wanted = check_sha256(sha256)
    if arch:
        choose_arch(arch, None)  # still refuse a bad arch

    def work() -> Release | None:
        with sessions() as session:
            bin_ = queries.require_bin(session, name)
            return queries.release_of(session, bin_.id, wanted, None)

    release = await anyio.to_thread.run_sync(work)
    if release is None:
        raise NotFound(f"bin {name!r} has no release with sha256 {wanted}")
    if settings.x_accel_redirect:
        return accel_response(settings.x_accel_redirect, wanted, name, True, if_none_match)
    return artifact_response(store.path_for(wanted), wanted, name, True, if_none_match)


async def _download_latest(
    sessions: sessionmaker[Session],
    pointers: PointerCache,
    store: ArtifactStore,
    settings: Settings,
    name: str,
    arch: str | None,
    node_name: str | None,
    if_none_match: str | None,
) -> Response:
    target = await resolve(sessions, pointers, name, arch, node_name)

    def is_release() -> bool:
        with sessions() as session:
            found = queries.release_of(session, target.bin_id, target.sha256, target.arch)
            return found is not None

    # A latest pointer always names a release; while paused, a node may have reported
    # content that is no release of this bin: check, cheaply, only when it can differ.
    if not pointers.is_latest(name, target) and not await anyio.to_thread.run_sync(is_release):
        raise NotFound(f"bin {name!r} has no release with sha256 {target.sha256}")
    if settings.x_accel_redirect:
        return accel_response(settings.x_accel_redirect, target.sha256, name, False, if_none_match)
    path = store.path_for(target.sha256)
    return artifact_response(path, target.sha256, name, False, if_none_match)


@router.get(
    "/cache/authorize",
    status_code=204,
    response_class=Response,
    summary="May this client download? (a cluster cache's auth_request)",
)
async def cache_authorize() -> Response:
    """204 when the downloads above would accept the caller's credentials: this route sits
    behind the same router dependencies, so it follows whatever they accept."""
    return Response(status_code=204, headers={"Cache-Control": NOT_CACHEABLE})


@router.get(
    "/releases/latest/{bin_name:path}/download",
    **BINARY_ROUTE,
    summary="Download the latest (fallback)",
)
@router.head(
    "/releases/latest/{bin_name:path}/download",
    **BINARY_ROUTE,
    summary="Download the latest (fallback): the headers only",
)
async def download_latest(
    name: BinName,
    sessions: Sessions,
    pointers: Pointers,
    store: Store,
    settings: AppSettings,
    arch: ArchQuery = None,
    node_name: NodeNameQuery = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return await _download_latest(
        sessions, pointers, store, settings, name, arch, node_name, if_none_match
    )


@router.get(
    "/releases/latest/{bin_name:path}/sha256",
    response_class=Response,  # no JSON success; errors stay the JSON envelope (PLAIN_SHA)
    responses=PLAIN_SHA,
    summary="The latest sha256 as plain text",
)
async def latest_sha256(
    name: BinName,
    sessions: Sessions,
    pointers: Pointers,
    arch: ArchQuery = None,
    node_name: NodeNameQuery = None,
) -> PlainTextResponse:
    target = await resolve(sessions, pointers, name, arch, node_name)
    return PlainTextResponse(target.sha256, headers={"Cache-Control": NOT_CACHEABLE})
