"""FastAPI dependencies as `Annotated` aliases: session, clock, store, auth, bin name.

The small ones are `async def` on purpose: FastAPI runs a sync dependency in a worker
thread, and those hops, not the work, dominated the cost of a poll.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import ErrorBody
from ansible_proxy.server.auth import credentials as node_auth
from ansible_proxy.server.auth import token_ok
from ansible_proxy.server.auth.credentials import Bearer, bearer_of
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.inputs import ARCH_NAMES, BIN_NAME_SCHEMA_PATTERN, check_bin_name
from ansible_proxy.server.limits.throttle import Throttle
from ansible_proxy.server.problems import Unauthorized
from ansible_proxy.server.rollouts.context import Context as RolloutContext
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.storage.artifacts import ArtifactStore
from ansible_proxy.server.writepath.heartbeats import Heartbeats as HeartbeatBuffer
from ansible_proxy.server.writepath.writes import WriteBatcher

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def error_answer(description: str) -> dict[str, Any]:
    """An error status's OpenAPI entry: the `{code, message}` body (app.py's handlers)."""
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: error_answer(text)
    for status, text in (
        (400, "Bad input"),
        (401, "Missing or wrong bearer token"),
        (403, "A valid credential that may not do this (another node's, an unsigned release)"),
        (404, "Unknown bin, node or release"),
        (422, "Body or parameters of the wrong shape"),
        (429, "Too many failed authentications from this address: see Retry-After"),
        (503, "The database or the data directory fails (outages.py): the message names it"),
        (507, "No space left for the database or the data directory: the message names it"),
    )
}


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


async def utc_now() -> datetime:
    """Naive UTC, as the database stores it."""
    return stored_now()


def _app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency answering `app.state.<name>`, which create_app() set (its type is the
    alias's below)."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


DbSession = Annotated[Session, Depends(get_session)]
Pointers = Annotated[PointerCache, Depends(_app_state("pointers"))]
# The session factory, for routes that do all their database work in one thread.
Sessions = Annotated[sessionmaker[Session], Depends(_app_state("sessions"))]
AppSettings = Annotated[Settings, Depends(_app_state("settings"))]
Store = Annotated[ArtifactStore, Depends(_app_state("store"))]
Now = Annotated[datetime, Depends(utc_now)]
Heartbeats = Annotated[HeartbeatBuffer, Depends(_app_state("heartbeats"))]
Writes = Annotated[WriteBatcher, Depends(_app_state("writes"))]
NodeCredentials = Annotated[node_auth.Credentials, Depends(_app_state("credentials"))]
Throttles = Annotated[Throttle, Depends(_app_state("throttle"))]
Rollouts = Annotated[RolloutContext, Depends(_app_state("rollouts"))]


async def get_bearer(request: Request) -> Bearer:
    """The bearer token (if any) and the client address, for node credentials."""
    address = request.client.host if request.client else "unknown"
    return bearer_of(request.headers.get("authorization"), address)


Caller = Annotated[Bearer, Depends(get_bearer)]


async def require_agent(nodes: NodeCredentials, caller: Caller) -> None:
    """Reads (per-tick GETs, downloads): open unless an agent token is configured; then
    that token, the admin token, or any node's or proxy's credential."""
    await nodes.require_read(caller)


async def require_metrics(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The metrics token or the admin token; open only with --insecure-no-auth."""
    if settings.insecure_no_auth:
        return
    if credentials is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    if not token_ok(credentials.credentials, settings.metrics_token, settings.admin_token):
        raise Unauthorized("wrong bearer token")


async def bin_name_param(
    bin_name: Annotated[
        str,
        Path(
            description="bin name, [A-Za-z0-9._-]{1,128}",
            json_schema_extra={"pattern": BIN_NAME_SCHEMA_PATTERN},
        ),
    ],
) -> str:
    return check_bin_name(bin_name)


BinName = Annotated[str, Depends(bin_name_param)]
# A release's arch and content in a query (admin routes and the signature route)
ArchQuery = Annotated[
    str,
    Query(
        max_length=64,
        description="x86_64 or aarch64 (amd64, arm64 accepted)",
        json_schema_extra={"enum": list(ARCH_NAMES)},
    ),
]
Sha256Query = Annotated[
    str,
    Query(
        max_length=128,
        description="the release's content, 64 hex digits",
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    ),
]
