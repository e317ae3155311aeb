"""Agent writes: one at a time on SQLite, then history pruned by age and count when due.

SQLite's busy handler sleeps up to 100 ms between retries when writers collide, so on
SQLite the agent write routes take an in-process lock instead (commits take ~1 ms).

Pruning runs at most once per `interval` seconds, in the request thread of a write that
finds it due (never two at once); each run deletes by primary key ranges, so its cost
follows the rows it removes, not the size of the tables.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.models import BinReportRow, Node, NodeBin, ProgressRow
from ansible_proxy.server.settings import Settings
from ansible_proxy.server.webhooks.queue import prune_delivered

log = logging.getLogger(__name__)
T = TypeVar("T")
POSTGRES_WRITERS = 16  # writer threads at once on PostgreSQL (the pool holds 45 + 10)
CHUNK = 50_000  # rows per table per run: a backlog shrinks over several runs
_HISTORY = (ProgressRow, BinReportRow)


@dataclass(frozen=True)
class Policy:
    """What to keep: history younger than `days`, at most `max_rows` rows per table."""

    days: float
    max_rows: int
    forget_nodes_days: float = 0.0  # 0: nodes are never forgotten


@dataclass(frozen=True)
class Pruned:
    progress: int = 0
    reports: int = 0
    nodes: int = 0


def prune(session: Session, policy: Policy, now: datetime) -> Pruned:
    """One pruning pass (the caller commits)."""
    cutoff = now - timedelta(days=policy.days)
    counts = [_prune_history(session, table, cutoff, policy.max_rows) for table in _HISTORY]
    prune_delivered(session, cutoff)  # webhook deliveries made: kept as long as history
    nodes = 0
    if policy.forget_nodes_days > 0:
        nodes = _forget_nodes(session, now - timedelta(days=policy.forget_nodes_days))
    return Pruned(progress=counts[0], reports=counts[1], nodes=nodes)


def _prune_history(
    session: Session, table: type[ProgressRow | BinReportRow], cutoff: datetime, max_rows: int
) -> int:
    lowest, highest = session.execute(select(func.min(table.id), func.max(table.id))).one()
    if lowest is None:
        return 0
    # Rows are appended in time order: the first row young enough bounds the old ones,
    # found by walking the primary key from the oldest row, not by scanning the table.
    first_young = session.scalar(
        select(table.id).where(table.reported_at >= cutoff).order_by(table.id).limit(1)
    )
    below = highest + 1 if first_young is None else first_young
    below = max(below, highest - max_rows + 1)
    below = min(below, lowest + CHUNK)
    if below <= lowest:
        return 0
    result = session.execute(delete(table).where(table.id < below))
    return int(getattr(result, "rowcount", 0) or 0)


def _forget_nodes(session: Session, cutoff: datetime) -> int:
    ids = list(session.scalars(select(Node.id).where(Node.last_seen < cutoff).limit(CHUNK)))
    if not ids:
        return 0
    for table in (*_HISTORY, NodeBin):
        session.execute(delete(table).where(table.node_id.in_(ids)))
    session.execute(delete(Node).where(Node.id.in_(ids)))
    return len(ids)


class Retention:
    """Runs `prune` when a write finds it due: at most once per `interval` seconds."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: Policy,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        serialize: bool = False,
    ) -> None:
        self.sessions = sessions
        self.serialize = serialize
        self._write_lock = threading.Lock()
        # Writers wait for their turn in the event loop, not in worker threads: a thread
        # blocked on the write lock is one fewer for downloads and reads (in a 10,000-node
        # rollout they queued behind the writes into 30 s timeouts).
        self.limiter = CapacityLimiter(1 if serialize else POSTGRES_WRITERS)
        self.policy = policy
        self.interval = interval
        self.clock = clock
        self._next = clock()  # the first write after start prunes
        self._lock = threading.Lock()
        self.last: Pruned | None = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write transaction: exclusive on SQLite, free on PostgreSQL."""
        if not self.serialize:
            yield
            return
        with self._write_lock:
            yield

    async def run_write(self, work: Callable[[], T]) -> T:
        """Run `work` (which takes `writing()`) in a worker thread when a writer slot is free."""
        return await anyio.to_thread.run_sync(work, limiter=self.limiter)

    def after_write(self, now: datetime) -> None:
        """Called after a committed write: prunes when due and no other thread does."""
        if self.clock() < self._next or not self._lock.acquire(blocking=False):
            return
        try:
            self._next = self.clock() + self.interval
            with self.writing(), self.sessions() as session:
                self.last = prune(session, self.policy, now)
                session.commit()
        except SQLAlchemyError as exc:  # the write itself is committed: never fail it
            log.warning("pruning history failed (retried later): %s", type(exc).__name__)
        finally:
            self._lock.release()


def from_settings(settings: Settings, sessions: sessionmaker[Session]) -> Retention:
    policy = Policy(settings.history_days, settings.history_max_rows, settings.forget_nodes_days)
    serialize = settings.resolved_database_url.startswith("sqlite")
    return Retention(sessions, policy, settings.prune_interval_seconds, serialize=serialize)
