"""AgentFastPath keeps only ordinary per-tick GETs whose answer is in memory and fresh; the
rest reaches the app behind it (tests/integration/server/test_fast_path.py shows the
answers equal the routes' own)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message, Receive, Scope, Send

from ansible_proxy.server.auth.credentials import Credentials, NodeAuth
from ansible_proxy.server.db.credentials import Binding, NameState, Principal, token_hash
from ansible_proxy.server.db.queries import Pointer
from ansible_proxy.server.hotpath.batch import Snapshot, build_answer
from ansible_proxy.server.hotpath.fastpath import AgentFastPath
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.limits.throttle import Throttle
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.writepath.heartbeats import Heartbeats
from ansible_proxy.server.writepath.retention import Policy, Retention

SHA = "a" * 64
WITHDRAWN = "b" * 64
POINTER = Pointer(bin_id=1, paused=False, sha256=SHA, paused_release_id=None)
PAUSED = Pointer(bin_id=2, paused=True, sha256=SHA, paused_release_id=None)
TOKEN = "agent-token-for-the-fast-path-tests"


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class Downstream:
    """Stands for the FastAPI app behind the middleware: records what reaches it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _get(app: AgentFastPath, target: str, headers: dict[str, str] | None = None) -> int:
    status, _ = await _call(app, target, headers)
    return status


async def _call(
    app: AgentFastPath, target: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """GET `target` through the middleware: the status and the body sent."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


def _middleware(
    tmp_path: Path, sessions: sessionmaker[Session], clock: Clock, token: str | None = None
) -> AgentFastPath:
    retention = Retention(sessions, Policy(days=30, max_rows=1000), interval=3600)
    settings = Settings(data_dir=tmp_path, admin_token="x" * 32, agent_token=token)
    pointers = PointerCache(ttl=1.0, clock=clock)
    pointers.put("app", "x86_64", POINTER)
    pointers.put("frozen", "x86_64", PAUSED)
    pointers.put("gone", "x86_64", None)
    pointers.put("pinned", "x86_64", POINTER, (WITHDRAWN,))
    pointers.put_batch("x86_64", Snapshot({"app": POINTER}, build_answer("x86_64", {"app": SHA})))
    pointers.put_batch("aarch64", Snapshot({"frozen": PAUSED}, None))  # per node: paused
    heartbeats = Heartbeats(sessions, retention, interval=3600, clock=clock)
    heartbeats.remember("web-01")
    credentials = _credentials(sessions, settings, clock, NodeAuth.MIGRATE)
    credentials.remember("web-01", NameState(Binding.NONE))  # not enrolled: as before
    return AgentFastPath(Downstream(), settings, pointers, heartbeats, credentials)


def _credentials(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock, mode: NodeAuth
) -> Credentials:
    throttle = Throttle(30, 0.5, 30, 0.5)
    legacy = (settings.agent_token, settings.admin_token)
    return Credentials(sessions, mode, False, legacy, throttle, clock=clock)


KEPT = [
    "/api/v1/keepalive?nodeName=web-01",
    "/api/v1/bins?arch=x86_64",
    "/api/v1/bins?nodeName=web-01&arch=amd64",
    "/api/v1/bins/app?arch=x86_64",
    "/api/v1/bins/app?nodeName=web-01&arch=AMD64",
]
HANDED_ON = [
    "/api/v1/keepalive?nodeName=web-02",  # not known here: the database decides
    "/api/v1/keepalive",  # 422 from the route
    "/api/v1/keepalive?nodeName=",
    "/api/v1/keepalive?nodeName=a%00b",
    "/api/v1/keepalive?nodeName=web-01&nodeName=web-01",  # repeated parameter
    "/api/v1/bins",  # no arch: the node's registered one, from the database
    "/api/v1/bins?arch=aarch64",  # a paused bin: the answer depends on the node
    "/api/v1/bins?arch=sparc",
    "/api/v1/bins?arch=x86_64&nodeName=" + "n" * 256,  # too long: 422 from the route
    "/api/v1/bins/frozen?arch=x86_64",  # paused
    "/api/v1/bins/gone?arch=x86_64",  # unknown bin: 404 from the route
    "/api/v1/bins/other?arch=x86_64",  # not cached
    "/api/v1/bins/..?arch=x86_64",
    "/api/v1/bins/app/progress?arch=x86_64",
    "/api/v1/releases/latest/app/sha256?arch=x86_64",  # not a per-tick request
    "/healthz",
]


def test_ordinary_requests_are_kept_and_the_rest_handed_on(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    clock = Clock()
    app = _middleware(tmp_path, sessions, clock)

    async def scenario() -> None:
        app.heartbeats.start()
        for target in KEPT:
            assert await _get(app, target) == 200, target
        assert app.app.paths == []  # type: ignore[attr-defined]
        for target in HANDED_ON:
            assert await _get(app, target) == 299, target
        assert len(app.app.paths) == len(HANDED_ON)  # type: ignore[attr-defined]
        clock.now += 1.0  # the cached pointers are no longer fresh
        assert await _get(app, "/api/v1/bins/app?arch=x86_64") == 299
        assert await _get(app, "/api/v1/bins?arch=x86_64") == 299
        await app.heartbeats.stop()

    asyncio.run(scenario())


def test_withdrawn_releases_are_answered_from_memory_too(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    app = _middleware(tmp_path, sessions, Clock())
    status, body = asyncio.run(_call(app, "/api/v1/bins/pinned?arch=x86_64"))
    assert status == 200
    assert app.app.paths == []  # type: ignore[attr-defined]
    assert json.loads(body)["data"] == {
        "sha256": SHA,
        "version": "latest",
        "withdrawn": [WITHDRAWN],
    }
    status, body = asyncio.run(_call(app, "/api/v1/bins/app?arch=x86_64"))
    assert json.loads(body)["data"] == {"sha256": SHA, "version": "latest"}


def test_without_a_running_flusher_keepalives_reach_the_route(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    app = _middleware(tmp_path, sessions, Clock())
    assert asyncio.run(_get(app, "/api/v1/keepalive?nodeName=web-01")) == 299


def test_with_an_agent_token_only_a_right_bearer_is_kept(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    app = _middleware(tmp_path, sessions, Clock(), token=TOKEN)
    target = "/api/v1/bins?arch=x86_64"
    right = {"Authorization": f"Bearer {TOKEN}"}
    admin = {"Authorization": f"bearer {'x' * 32}"}
    assert asyncio.run(_get(app, target, right)) == 200
    assert asyncio.run(_get(app, target, admin)) == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
        assert asyncio.run(_get(app, target, headers)) == 299, headers


def test_every_get_route_under_the_fast_paths_prefixes_was_reviewed() -> None:
    from fastapi.routing import APIRoute

    from ansible_proxy.protocol import API_PREFIX
    from ansible_proxy.server.api.agent import router
    from ansible_proxy.server.hotpath.fastpath import SHADOWED_ROUTES

    paths = {
        route.path.removeprefix(API_PREFIX)
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or set())
    }
    watched = {path for path in paths if path.startswith(("/keepalive", "/bins"))}
    assert watched == SHADOWED_ROUTES


def test_a_keepalive_is_kept_only_with_the_nodes_own_credential_when_it_is_enrolled(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    clock = Clock()
    app = _middleware(tmp_path, sessions, clock, token=TOKEN)
    app.credentials = nodes = _credentials(sessions, app.settings, clock, NodeAuth.REQUIRED)
    own, other = "n" * 43, "o" * 43
    nodes.remember_principal(token_hash(own), Principal("node", "web-01"))
    nodes.remember_principal(token_hash(other), Principal("node", "web-09"))
    nodes.remember("web-01", NameState(Binding.ENROLLED))
    target = "/api/v1/keepalive?nodeName=web-01"

    async def scenario() -> None:
        app.heartbeats.start()
        assert await _get(app, target, {"Authorization": f"Bearer {own}"}) == 200
        for token in (other, TOKEN, "x" * 32, "unknown-token-" * 3):  # the route refuses
            assert await _get(app, target, {"Authorization": f"Bearer {token}"}) == 299
        assert await _get(app, target) == 299
        # Reads need only some credential: another node's is enough for GET /bins.
        assert (
            await _get(app, "/api/v1/bins?arch=x86_64", {"Authorization": f"Bearer {other}"}) == 200
        )
        nodes.remember("web-01", NameState(Binding.REVOKED))
        assert await _get(app, target, {"Authorization": f"Bearer {own}"}) == 299
        await app.heartbeats.stop()

    asyncio.run(scenario())
