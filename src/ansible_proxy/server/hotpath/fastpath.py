"""The per-tick agent GETs answered from memory, before FastAPI sees them.

A no-op agent tick asks GET /keepalive and GET /bins (or GET /bins/{bin} per bin); with
the answer in the pointer cache, FastAPI's per-request work (dependency solving, query
validation) cost about two thirds of the server's CPU per request. This ASGI middleware
answers exactly those requests when everything about them is ordinary: the path, one of
each known parameter, valid values, the right token (when one is configured) and a
fresh cache entry (or a known node). Anything else, errors included, goes on to the
FastAPI routes, which stay the one definition of the API (OpenAPI, messages, checks).
The answers are byte for byte what those routes send.

create_app puts it in front of FastAPI's own middleware stack (error handling, body
limits, the access log: together a third of a poll's CPU in the app), so it counts and
logs its answers itself, with the access log's `RequestLog`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from ansible_proxy.protocol import API_PREFIX, is_bin_name, is_node_name, normalize_arch, ok
from ansible_proxy.server.auth.credentials import Bearer, Credentials, bearer_of, decide
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.hotpath import batch
from ansible_proxy.server.hotpath.pointers import PointerCache, latest_data
from ansible_proxy.server.inputs import MAX_ARCH_QUERY
from ansible_proxy.server.metrics import RequestLog
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.writepath.heartbeats import Heartbeats

log = logging.getLogger(__name__)

KEEPALIVE = f"{API_PREFIX}/keepalive"
BATCH = f"{API_PREFIX}/bins"
ONE_BIN = f"{API_PREFIX}/bins/"
_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")  # what the access log adds to the routes' answers
_MAX_RENDERED = 1024


@dataclass(frozen=True)
class _Route:
    """What the access log reads from `scope["route"]`: FastAPI's route template."""

    path_format: str


# The GET routes of api/agent.py under the prefixes this middleware watches, each
# reviewed against it: it answers these when it can and hands everything else on. A new
# GET route there fails tests/unit/server/hotpath/test_fastpath.py until it is checked
# (is it shadowed by a path test below?) and listed here.
SHADOWED_ROUTES = frozenset({"/keepalive", "/bins", "/bins/{bin_name:path}"})

_Answer = tuple[_Route, int, list[Any], bytes]  # route label, status, headers, body
_KEEPALIVE_ROUTE = _Route(KEEPALIVE)
_BATCH_ROUTE = _Route(BATCH)
_ONE_BIN_ROUTE = _Route(f"{ONE_BIN}{{bin_name}}")


class AgentFastPath:
    """ASGI middleware: GET /keepalive, /bins and /bins/{bin} from memory when it can."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        pointers: PointerCache,
        heartbeats: Heartbeats,
        credentials: Credentials,
        requests: RequestLog | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.pointers = pointers
        self.heartbeats = heartbeats
        self.credentials = credentials
        self.requests = requests  # None: an access log behind it counts the answers
        # GET /bins/{bin}'s answer depends only on these: rendered once each.
        self._latest: dict[tuple[str, tuple[str, ...]], tuple[list[Any], bytes]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            started = time.perf_counter()
            answer = self.answer_now(scope)
            if answer is not None:
                route, status, headers, body = answer
                scope["route"] = route  # the access log's route label
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                self.record(scope, route, status, started)
                return
        await self.app(scope, receive, send)

    def answer_now(self, scope: Scope) -> _Answer | None:
        """The answer to the GET `scope` (its path, query_string and headers) from memory,
        or None: the app decides. Synchronous: the HTTP protocol asks it before any ASGI
        request exists (limits/connections.py)."""
        path = scope["path"]
        if path != KEEPALIVE and not path.startswith(BATCH):
            return None  # hash no other route's token
        try:
            bearer = bearer_of(_header(scope, b"authorization"), "")
            return self._answer(scope, bearer) if self._authorized(bearer) else None
        except Exception:  # a bug here must not cost the answer: the route gives it
            log.exception("the fast path failed on %s; the route answers", path)
            return None

    def record(self, scope: Scope, route: _Route, status: int, started: float) -> None:
        """Count and log an answer sent (`scope`: method, path, client)."""
        if self.requests is not None:
            elapsed = time.perf_counter() - started
            self.requests.record(scope, route.path_format, status, elapsed)

    def _answer(self, scope: Scope, bearer: Bearer) -> _Answer | None:
        path: str = scope["path"]
        if path == KEEPALIVE:
            return self._keepalive(scope, bearer)
        if path == BATCH:
            return self._batch(scope)
        if path.startswith(ONE_BIN):
            return self._one_bin(scope, path[len(ONE_BIN) :])
        return None

    def _keepalive(self, scope: Scope, bearer: Bearer) -> _Answer | None:
        query = _query(scope)
        name = query.get("nodeName") if query else None
        if not name or not is_node_name(name):
            return None
        if not self._may_heartbeat(name, bearer):
            return None
        if not self.heartbeats.seen(name, stored_now()):
            return None
        body = _ALIVE_HEAD + name.encode() + _ALIVE_TAIL  # a node name needs no escaping
        return _KEEPALIVE_ROUTE, 200, [_length(body), _JSON, _NO_STORE], body

    def _batch(self, scope: Scope) -> tuple[_Route, int, list[Any], bytes] | None:
        query = _query(scope)
        arch = _arch(query)
        if arch is None:
            return None
        cached = self.pointers.peek_batch(arch)
        assert query is not None  # _arch() said the query is usable
        shared = (
            cached.for_node(query.get("nodeName")) if isinstance(cached, batch.Snapshot) else None
        )
        if shared is None:
            return None
        headers = [(b"etag", shared.etag.encode()), (b"cache-control", b"no-cache")]
        if batch.matches(shared.etag, _header(scope, b"if-none-match")):
            return _BATCH_ROUTE, 304, headers, b""
        length = (b"content-length", str(len(shared.body)).encode())
        return _BATCH_ROUTE, 200, [*headers, length, _JSON], shared.body

    def _one_bin(self, scope: Scope, name: str) -> tuple[_Route, int, list[Any], bytes] | None:
        if not is_bin_name(name):
            return None
        query = _query(scope)
        arch = _arch(query)
        if arch is None or query is None:
            return None
        cached = self.pointers.peek(name, arch)
        if cached is None:
            return None
        pointer, withdrawn = cached
        sha = pointer.sha_for(query.get("nodeName"))
        if pointer.paused or sha is None:
            return None
        if sha != pointer.sha256:  # as pointers._answer: never told its answer is withdrawn
            withdrawn = tuple(other for other in withdrawn if other != sha)
        rendered = self._latest.get((sha, withdrawn))
        if rendered is None:
            if len(self._latest) >= _MAX_RENDERED:
                self._latest.clear()
            rendered = _json(ok(latest_data(sha, withdrawn)), _NO_STORE)
            self._latest[(sha, withdrawn)] = rendered
        return _ONE_BIN_ROUTE, 200, *rendered

    def _authorized(self, bearer: Bearer) -> bool:
        """As require_agent, from memory: no agent token configured, the agent's (or
        admin's) token, or a node's or proxy's credential the cache knows."""
        nodes = self.credentials
        if nodes.insecure or nodes.legacy_ok(bearer):
            return True
        if bearer.hashed is None:
            return False
        known, principal = nodes.cached_principal(bearer.hashed)
        return known and principal is not None

    def _may_heartbeat(self, name: str, bearer: Bearer) -> bool:
        """As the keepalive route's write rule, from memory; False: let the route decide."""
        nodes = self.credentials
        if nodes.insecure:
            return True
        principal = None
        if bearer.hashed is not None:
            known, principal = nodes.cached_principal(bearer.hashed)
            if not known:
                return False
        state = nodes.cached_state(name)
        if state is None:
            return False
        return decide(nodes.mode, name, state, principal, nodes.legacy_ok(bearer)) is None


def _query(scope: Scope) -> dict[str, str] | None:
    """The query parameters; None when one is repeated (FastAPI then decides)."""
    raw = scope["query_string"].decode("latin-1")
    if "%" in raw or "+" in raw:
        pairs = parse_qsl(raw, keep_blank_values=True)
    else:  # nothing to unquote: the same pairs as parse_qsl, at a third of its cost
        pairs = [
            (name, value) for name, _, value in (p.partition("=") for p in raw.split("&") if p)
        ]
    query = dict(pairs)
    return query if len(query) == len(pairs) else None


def _arch(query: dict[str, str] | None) -> str | None:
    """The canonical arch, when the query names a valid one and a valid node (or none)."""
    if query is None:
        return None
    name = query.get("nodeName")
    arch = query.get("arch")
    if name is not None and not is_node_name(name):
        return None
    if arch is None or len(arch) > MAX_ARCH_QUERY:
        return None
    return normalize_arch(arch)


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _json(body: dict[str, Any], *extra: tuple[bytes, bytes]) -> tuple[list[Any], bytes]:
    """Headers and bytes as FastAPI's JSONResponse renders them."""
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return [_length(data), _JSON, *extra], data


def _length(body: bytes) -> tuple[bytes, bytes]:
    return b"content-length", str(len(body)).encode()


# GET /keepalive's answer around the node's name, as _json renders it.
_ALIVE_HEAD, _ALIVE_TAIL = _json(ok({"nodeName": "@", "status": "active"}))[1].split(b"@")
