"""GET /readyz: may this server take work? It writes, as work does: a tiny upsert in the
database (one row per server machine, `readiness_checks`) and a temp file in the data
directory. A check waits at most a few seconds for a locked database (work waits 30 s).

The same two probes tell outages.py when an outage is over. Concurrent readiness requests
share one check: a caller takes the result of a check that started after it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import uuid
from datetime import UTC, datetime

import anyio.to_thread
from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ansible_proxy.server.db.engine import SQLITE_BUSY_MS
from ansible_proxy.server.db.models import ReadinessCheck
from ansible_proxy.server.outages import (
    DATA_DIR,
    DATABASE,
    UNAVAILABLE,
    Fault,
    Resources,
    fault_of,
)
from ansible_proxy.server.storage.artifacts import ArtifactStore

CHECK_WAIT_MS = 3000  # how long a check waits for a locked database
PROBE_BYTES = 4096  # one block: a full file system refuses it


class Readiness:
    """The database and data-directory probes, and GET /readyz's shared check."""

    def __init__(self, engine: Engine, store: ArtifactStore, where: Resources) -> None:
        self.engine = engine
        self.store = store
        self.where = where
        self.server = socket.gethostname()[:255] or "unknown"
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock = asyncio.Lock()
        self._started = 0  # checks started so far
        self._last: tuple[int, list[Fault]] = (0, [])  # the newest check's number and result

    async def check(self) -> list[Fault]:
        """Every failed probe (empty: ready), from a check that started after this call."""
        arrived = self._started
        async with self._lock:
            number, faults = self._last
            if number > arrived:
                return faults
            self._started += 1
            number = self._started
            faults = await anyio.to_thread.run_sync(self.check_all)
            self._last = (number, faults)
            return faults

    def check_all(self) -> list[Fault]:
        return [fault for fault in (self.database(), self.data_dir()) if fault is not None]

    def probe(self, resource: str) -> Fault | None:
        """Whether `resource` works again (outages.py): its fault, or None when it does."""
        return next((fault for fault in self.check_all() if fault.resource == resource), None)

    def database(self) -> Fault | None:
        """Upsert this machine's row, waiting at most CHECK_WAIT_MS for a lock."""
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        make = sqlite.insert if self._sqlite else postgresql.insert
        upsert = (
            make(ReadinessCheck)
            .values(server=self.server, checked_at=now, checks=1)
            .on_conflict_do_update(
                index_elements=["server"],
                set_={"checked_at": now, "checks": ReadinessCheck.checks + 1},
            )
        )
        try:
            with self.engine.connect() as connection:
                try:
                    if self._sqlite:
                        connection.exec_driver_sql(f"PRAGMA busy_timeout = {CHECK_WAIT_MS}")
                    else:
                        connection.execute(text(f"SET LOCAL lock_timeout = {CHECK_WAIT_MS}"))
                    connection.execute(upsert)
                    connection.commit()
                finally:
                    if self._sqlite:  # the pooled connection goes back with work's timeout
                        self._reset_busy_timeout(connection)
        except SQLAlchemyError as exc:
            refused = f"{self.where.database} refused a write ({type(exc).__name__})"
            return fault_of(exc, self.where) or Fault(DATABASE, UNAVAILABLE, refused)
        return None

    @staticmethod
    def _reset_busy_timeout(connection: Connection) -> None:
        try:
            connection.rollback()
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
            connection.commit()
        except SQLAlchemyError:
            connection.invalidate()  # never back in the pool with the short timeout

    def data_dir(self) -> Fault | None:
        """Write, fsync and remove a temp file where uploads are written."""
        probe = self.store.tmp_dir / f".readyz-{uuid.uuid4().hex}.part"
        try:
            self.store.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                if os.write(fd, b"\0" * PROBE_BYTES) < PROBE_BYTES:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(probe))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return fault_of(exc, self.where) or Fault(
                DATA_DIR,
                UNAVAILABLE,
                f"the data directory {self.where.data_dir} cannot be written "
                f"({exc.strerror or type(exc).__name__})",
            )
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return None
