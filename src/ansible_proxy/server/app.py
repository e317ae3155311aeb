"""create_app(settings): the bin-manager as an ASGI app, with no module-level state.

Building the app prepares its storage: creates the data directory, removes temp files
left by a crash and migrates the database schema to the newest revision.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from ansible_proxy import __version__
from ansible_proxy.server.api import admin as admin_api
from ansible_proxy.server.api import agent as agent_api
from ansible_proxy.server.api import audit as audit_api
from ansible_proxy.server.api import credentials as credentials_api
from ansible_proxy.server.api import enrolment as enrolment_api
from ansible_proxy.server.api import operations as operations_api
from ansible_proxy.server.api import rollouts as rollouts_api
from ansible_proxy.server.api import signatures as signatures_api
from ansible_proxy.server.api import team as team_api
from ansible_proxy.server.api.docs import add_api_docs
from ansible_proxy.server.audit import trail
from ansible_proxy.server.auth.credentials import Credentials, NodeAuth
from ansible_proxy.server.auth.lookups import TeamCache
from ansible_proxy.server.auth.watch import CredentialWatch
from ansible_proxy.server.dashboard import routes as dashboard
from ansible_proxy.server.db.engine import make_engine, make_sessionmaker, migrate
from ansible_proxy.server.hotpath.fastpath import AgentFastPath
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.limits.bodies import BodyLimit
from ansible_proxy.server.limits.throttle import Throttle
from ansible_proxy.server.metrics import AccessLog, Metrics, RequestLog
from ansible_proxy.server.outages import Outages, Resources
from ansible_proxy.server.problems import ApiProblem
from ansible_proxy.server.readiness import Readiness
from ansible_proxy.server.rollouts.calendar import calendar_clock
from ansible_proxy.server.rollouts.context import Context as RolloutContext
from ansible_proxy.server.rollouts.engine import RolloutChecker
from ansible_proxy.server.services.signatures import check_trusted_keys
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.storage.artifacts import ArtifactStore
from ansible_proxy.server.webhooks.folding import Rules
from ansible_proxy.server.webhooks.queue import enqueue
from ansible_proxy.server.webhooks.sender import WebhookSender
from ansible_proxy.server.webhooks.targets import parse_targets
from ansible_proxy.server.writepath.heartbeats import Heartbeats, known_ttl
from ansible_proxy.server.writepath.retention import from_settings as retention_from_settings
from ansible_proxy.server.writepath.writes import WriteBatcher

log = logging.getLogger(__name__)
_GC_YOUNG = 20_000  # allocations between young collections (Python's default: 700)


class _BinManager(FastAPI):
    """FastAPI with the agent's fast path (hotpath/fastpath.py) in front of its stack."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What the fast path hands on: FastAPI itself."""
        await super().__call__(scope, receive, send)


def error(status: int, message: str) -> JSONResponse:
    """The error envelope: the HTTP status as `code` and a human message."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Heartbeats are flushed while serving and once more at a graceful shutdown."""
    heartbeats: Heartbeats = app.state.heartbeats
    checker: RolloutChecker = app.state.rollout_checker
    sender: WebhookSender = app.state.webhooks
    watch: CredentialWatch = app.state.credential_watch
    outages: Outages = app.state.outages
    heartbeats.start()
    checker.start()
    sender.start()
    watch.start()
    outages.start()
    settle_heap()
    try:
        yield
    finally:
        await outages.stop()
        await watch.stop()
        await checker.stop()
        await heartbeats.stop()
        await anyio.to_thread.run_sync(sender.stop)


def settle_heap() -> None:
    """Once serving: what start-up built is never scanned by the cycle collector again,
    and young objects are collected in larger batches.

    The app's modules and caches are ~140,000 objects, and with Python's default
    threshold (700) the collector kept walking them: a trivial answer in the same
    process cost 58 µs of CPU instead of 41 (bench/README.md, "The hot path").
    Per-request objects die by reference count; a larger young generation only delays
    collecting the rare cycle.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])


def prepare_storage(settings: Settings) -> None:
    """Create the data directory, remove uploads a crash left half-written, migrate."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    removed = ArtifactStore(settings.artifact_dir).prepare()
    if removed:
        log.warning("removed %d unfinished upload(s) left by an earlier crash", removed)
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


def create_app(settings: Settings, *, prepare: bool = True) -> FastAPI:
    """The bin-manager for `settings`; raises ConfigError when storage (or a
    BIN_MANAGER_TRUSTED_KEYS file) is unusable.

    `prepare=False` is for the processes of `serve --workers N`: their parent prepared
    the storage once, and a worker restarted later must not delete another's uploads.
    """
    check_trusted_keys(settings.trusted_keys)
    if prepare:
        prepare_storage(settings)
    store = ArtifactStore(settings.artifact_dir)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    trail.watch(sessions)  # every change a request makes gets its audit entry

    app = _BinManager(
        title="bin-manager",
        version=__version__,
        description="Releases, downloads and the node registry of ansible-proxy.",
        lifespan=_lifespan,
        # FastAPI's native OpenTelemetry looks up the global providers on every request
        # (~30 µs); the server has its own metrics (/metrics) and JSON access log instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Swagger UI and ReDoc come from a CDN: server/apidocs.py serves /docs instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.pointers = PointerCache()
    app.state.team = TeamCache(sessions)  # API tokens and people (auth/lookups.py)
    where = Resources.of(settings.resolved_database_url, settings.data_dir)
    app.state.readiness = Readiness(engine, store, where)
    app.state.outages = Outages(where, app.state.readiness.probe)
    targets = parse_targets(
        settings.webhook_urls.get_secret_value() if settings.webhook_urls else None
    )
    app.state.webhooks = WebhookSender(
        sessions,
        targets,
        rules=Rules(
            repeat_seconds=settings.webhook_repeat_seconds,
            per_node=settings.webhook_per_node,
            per_bin=settings.webhook_per_bin,
            period_seconds=settings.webhook_period_seconds,
        ),
        on_fault=app.state.outages.note,
    )

    def notify(
        session: Session, event: str, text: str, data: Mapping[str, Any], now: datetime
    ) -> None:
        if targets:
            enqueue(session, targets, event, text, data, now)

    app.state.rollouts = RolloutContext(
        default_policy=settings.rollout_policy,
        silent_seconds=settings.rollout_silent_seconds,
        notify=notify,
        stale_seconds=settings.rollout_stale_seconds,
        stuck_seconds=settings.rollout_stuck_seconds,
        calendar=calendar_clock(settings.clock_start),
    )
    app.state.rollout_checker = RolloutChecker(
        sessions,
        app.state.rollouts,
        settings.rollout_interval_seconds,
        app.state.pointers.clear,
    )
    app.state.metrics = Metrics(sessions, lambda: app.state.webhooks if targets else None)
    app.state.retention = retention_from_settings(settings, sessions)
    app.state.writes = WriteBatcher(sessions, app.state.retention)
    app.state.heartbeats = Heartbeats(
        sessions,
        app.state.retention,
        interval=settings.heartbeat_flush_seconds,
        known_ttl=known_ttl(settings.forget_nodes_days),
        on_fault=app.state.outages.note,
    )
    app.state.throttle = Throttle(
        settings.enrol_burst,
        settings.enrol_per_second,
        settings.auth_failure_burst,
        settings.auth_failure_per_second,
    )
    app.state.credentials = Credentials(
        sessions,
        NodeAuth(settings.node_auth),
        settings.insecure_no_auth,
        (settings.agent_token, settings.admin_token),
        app.state.throttle,
    )
    app.state.credential_watch = CredentialWatch(
        sessions, app.state.credentials, on_fault=app.state.outages.note
    )
    app.include_router(enrolment_api.router)
    app.include_router(credentials_api.router)
    app.include_router(signatures_api.agent_router)  # before agent's /bins/{bin_name:path}
    app.include_router(agent_api.router)
    app.include_router(signatures_api.admin_router)
    app.include_router(rollouts_api.router)  # before admin's /bins/{bin_name:path}/… routes
    app.include_router(admin_api.router)
    app.include_router(team_api.router)
    app.include_router(audit_api.router)
    app.include_router(dashboard.router)
    app.include_router(operations_api.router)
    add_api_docs(app)
    _add_error_handlers(app)
    if settings.fast_path:
        app.front = AgentFastPath(
            app.behind_front,
            settings=settings,
            pointers=app.state.pointers,
            heartbeats=app.state.heartbeats,
            credentials=app.state.credentials,
            requests=RequestLog(app.state.metrics),
        )
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(AccessLog, metrics=app.state.metrics)  # the outermost: sees both
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def on_problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = list(exc.errors())
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return error(400, "malformed JSON in the request body")
        return error(422, _describe_validation(problems))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint: see /docs"
        response = error(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DataError)
    async def on_data_error(_request: Request, _exc: DataError) -> JSONResponse:
        return error(400, "a value in the request cannot be stored (out of range or bad text)")

    @app.exception_handler(IntegrityError)
    async def on_conflict(_request: Request, _exc: IntegrityError) -> JSONResponse:
        return error(409, "a concurrent request changed the same record; retry")

    @app.exception_handler(OSError)
    @app.exception_handler(SQLAlchemyError)
    async def on_resource(_request: Request, exc: Exception) -> JSONResponse:
        """The database or the data directory failing: 503 or 507 naming it, logged once
        per outage (outages.py); anything else stays a 500 with its traceback."""
        fault = app.state.outages.answer(exc)
        if fault is None:
            raise exc
        return error(fault.status, fault.message)

    @app.exception_handler(ClientDisconnect)
    async def on_disconnect(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        return error(400, "the client went away before the request body was complete")


def _describe_validation(problems: list[Any]) -> str:
    """One line naming each bad field: `body.sha256: String should match pattern …`."""
    parts = []
    for problem in problems[:5]:
        location = ".".join(str(part) for part in problem.get("loc", ()))
        if not location or (location == "body" and problem.get("type") == "missing"):
            location = "body"
        parts.append(f"{location}: {problem.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)
