"""The fast path's bytes are what the routes declare (api/agent.py's response models): they
validate against the model, and the compact ones are byte for byte what the model itself
sends when the route answers (the slow path). The fast path never runs pydantic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import API_PREFIX
from ansible_proxy.server.api.agent import router
from ansible_proxy.server.auth.credentials import Credentials, NodeAuth
from ansible_proxy.server.db.credentials import Binding, NameState
from ansible_proxy.server.db.queries import Pointer
from ansible_proxy.server.hotpath.batch import Snapshot, build_answer
from ansible_proxy.server.hotpath.fastpath import AgentFastPath
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.limits.throttle import Throttle
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.writepath.heartbeats import Heartbeats
from ansible_proxy.server.writepath.retention import Policy, Retention

SHA = "a" * 64
OLDER = "b" * 64
NEWER = "c" * 64
POINTER = Pointer(bin_id=1, paused=False, sha256=SHA, paused_release_id=None)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("every request here is answered by the fast path")


@pytest.fixture
def fast_path(tmp_path: Path, sessions: sessionmaker[Session]) -> AgentFastPath:
    settings = Settings(data_dir=tmp_path, admin_token="x" * 32)
    pointers = PointerCache(ttl=60)
    pointers.put("app", "x86_64", POINTER)
    pointers.put("pinned", "x86_64", POINTER, (NEWER, OLDER))
    withdrawn: dict[str, tuple[str, ...]] = {"pinned": (NEWER, OLDER)}
    bins = {"app": SHA, "pinned": SHA}
    pointers.put_batch("x86_64", Snapshot({}, build_answer("x86_64", bins, withdrawn)))
    pointers.put_batch("aarch64", Snapshot({}, build_answer("aarch64", {"app": SHA})))
    retention = Retention(sessions, Policy(days=30, max_rows=1000), interval=3600)
    heartbeats = Heartbeats(sessions, retention, interval=3600)
    heartbeats.remember("web-01")
    credentials = Credentials(
        sessions, NodeAuth.MIGRATE, True, (None, None), Throttle(30, 0.5, 30, 0.5)
    )
    credentials.remember("web-01", NameState(Binding.NONE))
    return AgentFastPath(_app, settings, pointers, heartbeats, credentials)


def _answer(fast_path: AgentFastPath, target: str) -> bytes:
    """The fast path's answer to GET `target`, with its heartbeat flusher running (else it
    hands keepalives on)."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(),
             "headers": []}  # fmt: skip

    async def serving() -> tuple[Any, int, list[Any], bytes] | None:
        fast_path.heartbeats.start()
        try:
            return fast_path.answer_now(scope)
        finally:
            await fast_path.heartbeats.stop()

    answer = asyncio.run(serving())
    assert answer is not None, f"{target} was handed on"
    _, status, headers, body = answer
    assert status == 200
    assert (b"content-type", b"application/json") in headers
    return body


def _declared(path: str) -> TypeAdapter[Any]:
    """The response model the GET route of `path` (under /api/v1) declares."""
    for route in router.routes:
        if (
            isinstance(route, APIRoute)
            and route.path == API_PREFIX + path
            and "GET" in (route.methods or set())
        ):
            model = route.response_model
            assert isinstance(model, type), f"GET {path} declares no model: {model}"
            assert issubclass(model, BaseModel), f"GET {path} declares no model: {model}"
            return TypeAdapter(model)
    raise AssertionError(f"no GET route {path}")


@pytest.mark.parametrize(
    ("route", "target"),
    [
        ("/keepalive", "/api/v1/keepalive?nodeName=web-01"),
        ("/bins/{bin_name:path}", "/api/v1/bins/app?arch=x86_64"),
        ("/bins/{bin_name:path}", "/api/v1/bins/pinned?arch=amd64&nodeName=web-01"),
    ],
)
def test_a_fast_answer_is_byte_for_byte_what_the_declared_model_sends(
    fast_path: AgentFastPath, route: str, target: str
) -> None:
    body = _answer(fast_path, target)
    model = _declared(route)
    assert model.dump_json(model.validate_json(body)) == body


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_a_fast_batch_answer_validates_against_the_declared_model(
    fast_path: AgentFastPath, arch: str
) -> None:
    body = _answer(fast_path, f"/api/v1/bins?arch={arch}&nodeName=web-01")
    answer = _declared("/bins").validate_json(body)
    assert answer.data.bins["app"] == SHA
    expected = {"pinned": [NEWER, OLDER]} if arch == "x86_64" else {}
    assert answer.data.withdrawn == expected
