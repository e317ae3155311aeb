"""Heartbeats on a real SQLite database: known nodes answered from memory, last_seen written
in one batch, never backwards, kept for a retry when the database is away."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.models import Node
from ansible_proxy.server.writepath.heartbeats import Heartbeats, known_ttl
from ansible_proxy.server.writepath.retention import Policy, Retention

T0 = datetime(2026, 11, 25, 4, 0, 0)


@pytest.fixture(autouse=True)
def nodes(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        for name in ("web-01", "web-02"):
            session.add(Node(name=name, cpu_arch="x86_64", os_release="t", agent_version="1",
                             first_seen=T0, last_seen=T0))  # fmt: skip
        session.commit()


def _heartbeats(sessions: sessionmaker[Session], clock: list[float]) -> Heartbeats:
    retention = Retention(sessions, Policy(days=30, max_rows=1000), interval=3600, serialize=True)
    return Heartbeats(sessions, retention, interval=3600, known_ttl=60, clock=lambda: clock[0])


def _last_seen(sessions: sessionmaker[Session]) -> dict[str, datetime | None]:
    with sessions() as session:
        return {node.name: node.last_seen for node in session.scalars(select(Node))}


def test_known_nodes_are_answered_from_memory_and_written_in_one_batch(
    sessions: sessionmaker[Session],
) -> None:
    clock = [100.0]
    beats = _heartbeats(sessions, clock)

    async def scenario() -> None:
        beats.start()
        t1 = T0 + timedelta(seconds=30)
        assert not beats.seen("web-01", t1)  # not known yet: the database must say
        assert await beats.touch("web-01", t1)  # one UPDATE, now known
        assert _last_seen(sessions)["web-01"] == t1
        assert not await beats.touch("nobody", t1)  # unknown: 404 for the route
        t2 = T0 + timedelta(seconds=90)
        assert beats.seen("web-01", t2)
        assert _last_seen(sessions)["web-01"] == t1  # kept in memory until the flush
        beats.remember("web-02")
        assert beats.seen("web-02", t2)
        assert await beats.flush() == 2
        assert _last_seen(sessions) == {"web-01": t2, "web-02": t2}
        clock[0] += 61  # known for 60 s: then the database is asked again
        assert not beats.seen("web-01", t2)
        await beats.stop()

    asyncio.run(scenario())


def test_a_flush_never_moves_last_seen_backwards(sessions: sessionmaker[Session]) -> None:
    beats = _heartbeats(sessions, [0.0])

    async def scenario() -> None:
        beats.start()
        beats.remember("web-01")
        assert beats.seen("web-01", T0 - timedelta(seconds=5))  # older than the row
        assert await beats.flush() == 1
        await beats.stop()

    asyncio.run(scenario())
    assert _last_seen(sessions)["web-01"] == T0


def test_without_a_running_flusher_every_keepalive_is_written(
    sessions: sessionmaker[Session],
) -> None:
    beats = _heartbeats(sessions, [0.0])
    beats.remember("web-01")
    t1 = T0 + timedelta(seconds=60)
    assert not beats.seen("web-01", t1)  # nobody would flush it
    assert asyncio.run(beats.touch("web-01", t1))
    assert _last_seen(sessions)["web-01"] == t1


def test_pending_heartbeats_survive_a_database_outage(
    sessions: sessionmaker[Session], db: Path
) -> None:
    beats = _heartbeats(sessions, [0.0])
    t1 = T0 + timedelta(seconds=60)

    def move_nodes_table(old: str, new: str) -> None:
        with sqlite3.connect(db) as raw:
            raw.execute(f"ALTER TABLE {old} RENAME TO {new}")

    async def scenario() -> None:
        beats.start()
        beats.remember("web-01")
        assert beats.seen("web-01", t1)
        move_nodes_table("nodes", "nodes_away")
        assert await beats.flush() == 0  # failed: logged, kept
        move_nodes_table("nodes_away", "nodes")
        assert await beats.flush() == 1
        await beats.stop()

    asyncio.run(scenario())
    assert _last_seen(sessions)["web-01"] == t1


def test_stop_writes_what_is_pending(sessions: sessionmaker[Session]) -> None:
    beats = _heartbeats(sessions, [0.0])
    t1 = T0 + timedelta(seconds=60)

    async def scenario() -> None:
        beats.start()
        beats.remember("web-02")
        assert beats.seen("web-02", t1)
        await beats.stop()
        assert not beats.running

    asyncio.run(scenario())
    assert _last_seen(sessions)["web-02"] == t1


def test_names_stay_known_well_inside_the_forget_window() -> None:
    assert known_ttl(0) == 600  # nodes never forgotten: ten one-minute ticks
    assert known_ttl(30) == 600
    assert known_ttl(600 / 86_400) == 300  # forgotten after 10 minutes: known for 5
