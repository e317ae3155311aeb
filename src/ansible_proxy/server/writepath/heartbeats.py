"""Heartbeats: GET /keepalive answered from memory, `last_seen` written in batches.

Every node asks GET /keepalive every tick; at 10,000 nodes that was 167 one-row UPDATE
commits a second, each in its own worker-thread hop. Instead a node known to exist (it
registered, or the database said so, in the last `known_ttl` seconds) is answered at
once and its new `last_seen` is kept here; a background task writes every pending one in
one transaction each `interval` seconds.

Decision: a crash (kill -9) loses at most `interval` seconds of `last_seen` refreshes,
never a registration (POST /keepalive still commits before it answers); each node's next
tick writes it again. A name stays known for `known_ttl` (10 minutes: ten one-minute
ticks, so one keepalive in ten asks the database), less when retention forgets nodes
sooner, so that a node forgotten on another replica is answered "active" here for at
most that long, then 404 (and the agent registers again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Table, bindparam, case, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.engine import error_name
from ansible_proxy.server.db.heard import reading
from ansible_proxy.server.db.models import Node
from ansible_proxy.server.outages import FaultNote, unnoted
from ansible_proxy.server.periodic import Periodic
from ansible_proxy.server.writepath.retention import Retention

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 1.0
DEFAULT_KNOWN_TTL = 600.0
_MAX_KNOWN = 500_000  # names, ~100 bytes each; beyond it the set starts over

_NODES: Table = Node.__table__  # type: ignore[assignment]
# `last_seen` never moves back (flushes of several processes may come out of order); the
# heard clock's reading (db/heard.py) is set whatever the wall clocks say: a clock stepped
# back must not make a node that keeps calling look silent.
_TOUCH = (
    update(_NODES)
    .where(_NODES.c.name == bindparam("b_name"))
    .values(
        last_seen=case(
            (
                or_(_NODES.c.last_seen.is_(None), _NODES.c.last_seen < bindparam("b_seen")),
                bindparam("b_seen"),
            ),
            else_=_NODES.c.last_seen,
        ),
        heard=reading(),
    )
)


def known_ttl(forget_nodes_days: float) -> float:
    """How long a name stays known: well inside the time after which nodes are forgotten."""
    if forget_nodes_days <= 0:
        return DEFAULT_KNOWN_TTL
    return min(DEFAULT_KNOWN_TTL, forget_nodes_days * 86_400 / 2)


class Heartbeats(Periodic):
    """Known node names and their pending `last_seen`, flushed by `run()`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        retention: Retention,
        interval: float = DEFAULT_INTERVAL,
        known_ttl: float = DEFAULT_KNOWN_TTL,
        clock: Callable[[], float] = time.monotonic,
        on_fault: FaultNote = unnoted,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.retention = retention
        self.on_fault = on_fault
        self.interval = interval
        self.known_ttl = known_ttl
        self.clock = clock
        self._known: dict[str, float] = {}  # name → known until (clock)
        self._pending: dict[str, datetime] = {}

    def seen(self, name: str, now: datetime) -> bool:
        """Record a keepalive of a node known to exist; False: ask the database."""
        until = self._known.get(name)
        if until is None or not self.running or self.clock() >= until:
            return False
        self._pending[name] = now
        return True

    def forget(self, name: str) -> None:
        """`name` was deleted (`bin-manager nodes delete`): ask the database at its next call."""
        self._known.pop(name, None)
        self._pending.pop(name, None)

    def remember(self, name: str) -> None:
        """`name` exists in the database (it just registered, or a query found it)."""
        if len(self._known) >= _MAX_KNOWN:
            self._known.clear()
        self._known[name] = self.clock() + self.known_ttl

    async def touch(self, name: str, now: datetime) -> bool:
        """A keepalive: from memory when the node is known, else one UPDATE. False: unknown."""
        if self.seen(name, now):
            return True

        def work() -> bool:
            with self.retention.writing(), self.sessions() as session:
                found = queries.touch_node_named(session, name, now)
                session.commit()
                return found

        found = await self.retention.run_write(work)
        if found:
            self.remember(name)
        return found

    async def flush(self) -> int:
        """Write every pending `last_seen` in one transaction; the count written."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        rows = [{"b_name": name, "b_seen": seen} for name, seen in batch.items()]

        def work() -> None:
            with self.retention.writing(), self.sessions() as session:
                session.connection().execute(_TOUCH, rows)
                session.commit()

        try:
            await self.retention.run_write(work)
        except SQLAlchemyError as exc:  # the database is away: keep them for the next try
            if not self.on_fault(exc):
                log.warning(
                    "writing %d heartbeats failed (retried): %s", len(rows), error_name(exc)
                )
            for name, seen in batch.items():
                self._pending.setdefault(name, seen)
            return 0
        return len(rows)

    async def run(self) -> None:
        """Flush every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def stop(self) -> None:
        """Stop flushing and write what is pending (at shutdown)."""
        await super().stop()
        await self.flush()
