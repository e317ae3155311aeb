"""Group commit on a real SQLite database: waiting writes share one commit, a refusal or a
failing write is answered to its own request only, and nothing is answered before commit."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import NodeInfo
from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Node
from ansible_proxy.server.problems import NotFound
from ansible_proxy.server.writepath.retention import Policy, Retention
from ansible_proxy.server.writepath.writes import Change, WriteBatcher

NOW = datetime(2026, 11, 25, 7, 0, 0)


class CountingRetention(Retention):
    """A real Retention that counts the write transactions it is asked to run."""

    runs = 0

    async def run_write(self, work):  # type: ignore[no-untyped-def]
        self.runs += 1
        return await super().run_write(work)


def _batcher(sessions: sessionmaker[Session]) -> tuple[WriteBatcher, CountingRetention]:
    retention = CountingRetention(sessions, Policy(30, 1000), interval=3600, serialize=True)
    return WriteBatcher(sessions, retention), retention


def _register(name: str):  # type: ignore[no-untyped-def]
    info = NodeInfo(nodeName=name, cpuArch="x86_64", osRelease="t", binProxyVersion="1")
    return lambda session: queries.register_node(session, info, NOW)


async def _submit_together(
    batcher: WriteBatcher, changes: list[Change]
) -> list[BaseException | None]:
    """Submit every change at once (one batch); each request's outcome, in order."""
    return list(await asyncio.gather(*(batcher.submit(c) for c in changes), return_exceptions=True))


def _names(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Node.name)))


def test_waiting_writes_share_one_commit(sessions: sessionmaker[Session]) -> None:
    batcher, retention = _batcher(sessions)

    async def scenario() -> None:
        await asyncio.gather(*(batcher.submit(_register(f"n-{i:03d}")) for i in range(100)))

    asyncio.run(scenario())
    assert _names(sessions) == {f"n-{i:03d}" for i in range(100)}
    assert retention.runs < 10  # 100 requests, a handful of transactions


def test_a_refusal_is_answered_to_its_request_only(sessions: sessionmaker[Session]) -> None:
    batcher, _ = _batcher(sessions)

    def refuse(session: Session) -> None:
        queries.require_node(session, "nobody")

    results = asyncio.run(_submit_together(batcher, [_register("a"), refuse, _register("b")]))
    assert results[0] is None
    assert isinstance(results[1], NotFound)
    assert "nobody" in str(results[1])
    assert results[2] is None
    assert _names(sessions) == {"a", "b"}


def test_a_write_failing_at_commit_fails_alone(sessions: sessionmaker[Session]) -> None:
    batcher, _ = _batcher(sessions)

    def duplicate(session: Session) -> None:  # bypasses register_node's lookup
        session.add(Node(name="a", cpu_arch="x86_64", os_release="t", agent_version="1",
                         first_seen=NOW, last_seen=NOW))  # fmt: skip

    asyncio.run(batcher.submit(_register("a")))
    results = asyncio.run(_submit_together(batcher, [_register("b"), duplicate, _register("c")]))
    assert results[0] is None
    assert isinstance(results[1], IntegrityError)
    assert results[2] is None
    assert _names(sessions) == {"a", "b", "c"}
