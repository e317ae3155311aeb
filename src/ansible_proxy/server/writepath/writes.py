"""Agent writes committed in groups: one worker-thread hop and one commit for many requests.

A rollout is three writes per node and bin (two progress events, one report) and an agent
upgrade re-registers every node, all within a tick: 10,000 nodes are 500 writes a second.
One at a time, each with its own thread hop and commit, SQLite managed about 400 and the
queue grew into client timeouts. Here a request's change waits in memory; one task takes
every change waiting, runs them in one session and commits once; each request is
answered only after that commit (group commit: nothing is acknowledged before it is
durable). A change that refuses (unknown bin or node) is answered its error and the
others still commit; when the commit itself fails, every change is retried on its own
so that one bad write cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.engine import error_name, stored_now
from ansible_proxy.server.outages import is_fault
from ansible_proxy.server.problems import ApiProblem
from ansible_proxy.server.writepath.retention import Retention

log = logging.getLogger(__name__)
MAX_BATCH = 500

Change = Callable[[Session], object]


class WriteBatcher:
    """`await submit(change)` returns once `change` is committed, or raises its error."""

    def __init__(self, sessions: sessionmaker[Session], retention: Retention) -> None:
        self.sessions = sessions
        self.retention = retention
        self._waiting: list[tuple[Change, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, change: Change) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # A client that went away stops waiting; its write still commits (or fails) with
        # the others, and that outcome is read here so that asyncio does not log it.
        done.add_done_callback(lambda future: future.cancelled() or future.exception())
        self._waiting.append((change, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        await asyncio.shield(done)  # a client that goes away does not cancel the others

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            changes = [change for change, _ in batch]
            try:
                errors = await self.retention.run_write(partial(self._commit, changes))
            except Exception as exc:  # the thread itself failed: tell every waiter
                errors = [exc] * len(batch)
            for (_, done), error in zip(batch, errors, strict=True):
                if done.done():
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    def _commit(self, changes: list[Change]) -> list[BaseException | None]:
        """In a worker thread: every change in one transaction; else each on its own."""
        errors: list[BaseException | None] = [None] * len(changes)
        try:
            with self.retention.writing(), self.sessions() as session:
                # One flush at the commit (multi-row INSERTs), not one per change: a change
                # never needs to see another's rows of the same batch (an agent waits for
                # its answer before its next write), and if two collide the commit fails
                # and each change is retried on its own.
                with session.no_autoflush:
                    for index, change in enumerate(changes):
                        try:
                            change(session)  # changes check (and may refuse) before they add
                        except ApiProblem as exc:
                            errors[index] = exc
                session.commit()
        except SQLAlchemyError as exc:
            if is_fault(exc):  # the database is away: each alone would fail the same way
                errors = [exc] * len(changes)
            else:
                log.info(
                    "a batch of %d writes failed (%s): one by one", len(changes), error_name(exc)
                )
                errors = [self._commit_one(change) for change in changes]
        self.retention.after_write(stored_now())
        return errors

    def _commit_one(self, change: Change) -> BaseException | None:
        try:
            with self.retention.writing(), self.sessions() as session:
                change(session)
                session.commit()
        except (ApiProblem, SQLAlchemyError) as exc:
            return exc
        return None
