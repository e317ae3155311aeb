"""The server's own resources failing — the database unreachable, locked or out of space,
the data directory full — answered with one clear error and logged once per outage.

`fault_of` (pure) tells which resource an exception is about, with the answer: 503, or
507 Insufficient Storage for a full disk, and a message naming the database (by host and
port, never its password) or the directory. `Outages` keeps one open outage per resource:
its first failure logs one line, every request it fails is counted, and while it is open
a probe (readiness.py) each second finds its end, logged with how long it lasted and how
many requests failed. An error that is no resource's (a bug) stays a 500 with its traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ansible_proxy.server.periodic import Periodic

log = logging.getLogger(__name__)

DATABASE = "database"
DATA_DIR = "data directory"
INSUFFICIENT_STORAGE = 507
UNAVAILABLE = 503
_REASON_CHARS = 200
# PostgreSQL error classes of the server's state, not of the statement: connection
# exceptions, insufficient resources, operator intervention (a shutdown), system errors.
_PG_CLASSES = ("08", "53", "57", "58")
_PG_DISK_FULL = "53100"


# What background work calls with an error it caught (Outages.note): True when the error
# is a resource's fault, recorded there, so that the caller need not log it again.
FaultNote = Callable[[BaseException], bool]


def unnoted(_exc: BaseException) -> bool:
    """The FaultNote of work without an Outages (tools, unit tests): log everything."""
    return False


def is_fault(exc: BaseException) -> bool:
    """Whether `exc` is a resource's fault (the database away, a disk full), pure."""
    return fault_of(exc, Resources("the database", Path("."))) is not None


@dataclass(frozen=True)
class Fault:
    """A resource that failed (`DATABASE` or `DATA_DIR`: the probe that tells its end),
    the HTTP status to answer and the message naming it."""

    resource: str
    status: int
    message: str


@dataclass(frozen=True)
class Resources:
    """What messages name: the database (never its password) and the data directory."""

    database: str
    data_dir: Path
    sqlite_file: Path | None = None

    @classmethod
    def of(cls, url: str, data_dir: Path) -> Resources:
        try:
            parsed = make_url(url)
        except ArgumentError:
            return cls("the database", data_dir)
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            return cls(f"the database (SQLite {path})", data_dir, path)
        backend = parsed.get_backend_name()
        kind = "PostgreSQL" if backend == "postgresql" else backend
        where = f"{parsed.host}:{parsed.port or 5432}" if parsed.host else "its local socket"
        name = f", database {parsed.database}" if parsed.database else ""
        return cls(f"the database ({kind} at {where}{name})", data_dir)

    def directory_of(self, path: Path | None) -> str:
        """Names the data directory, or the directory of `path` when that lies outside it."""
        if path is None or path.is_relative_to(self.data_dir):
            return f"the {DATA_DIR} {self.data_dir}"
        return f"the directory {path.parent}"


def fault_of(exc: BaseException, where: Resources) -> Fault | None:
    """The resource fault behind `exc`, or None when it is not one (a bug, bad input)."""
    if isinstance(exc, OSError):
        return _disk_fault(exc, where)
    if isinstance(exc, PoolTimeout):
        return Fault(
            DATABASE,
            UNAVAILABLE,
            f"{where.database} gave no connection in time: every connection is busy or hangs",
        )
    if not isinstance(exc, DBAPIError):
        return None
    cause: BaseException = exc.orig or exc
    if type(cause).__module__.startswith("sqlite3"):
        return _sqlite_fault(cause, where)
    state = getattr(cause, "sqlstate", None)
    reason = _reason(cause)
    if state == _PG_DISK_FULL:
        return Fault(
            DATABASE, INSUFFICIENT_STORAGE, f"{where.database} is out of disk space ({reason})"
        )
    if state is None and type(cause).__name__ in ("OperationalError", "InterfaceError"):
        return Fault(DATABASE, UNAVAILABLE, f"{where.database} is unreachable ({reason})")
    if (state and state[:2] in _PG_CLASSES) or exc.connection_invalidated:
        return Fault(DATABASE, UNAVAILABLE, f"{where.database} is unavailable ({reason})")
    return None


def _disk_fault(exc: OSError, where: Resources) -> Fault | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        status, state, remedy = INSUFFICIENT_STORAGE, "is full", "free space there"
    elif exc.errno == errno.EROFS:
        status, state, remedy = UNAVAILABLE, "is read-only", "make it writable"
    else:
        return None
    path = Path(exc.filename) if isinstance(exc.filename, str) else None
    what = f"{where.directory_of(path)} {state} ({exc.strerror})"
    return Fault(DATA_DIR, status, f"{what}: {remedy}, then retry")


def _sqlite_fault(cause: BaseException, where: Resources) -> Fault | None:
    reason = _reason(cause)
    name = getattr(cause, "sqlite_errorname", None) or _sqlite_name(reason)
    if name.startswith("SQLITE_FULL"):
        directory = where.directory_of(where.sqlite_file)
        # In the data directory, the one disk is the outage (not one for each of its users).
        return Fault(
            DATA_DIR if directory.startswith(f"the {DATA_DIR}") else DATABASE,
            INSUFFICIENT_STORAGE,
            f"{directory} is full: {where.database} cannot write ({reason}); "
            "free space there, then retry",
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return Fault(
            DATABASE,
            UNAVAILABLE,
            f"{where.database} is locked by another process or connection ({reason}): retry",
        )
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")):
        return Fault(DATABASE, UNAVAILABLE, f"{where.database} cannot be written ({reason})")
    return None


def _sqlite_name(reason: str) -> str:
    """The SQLite error name from its message (Python < 3.11 has no `sqlite_errorname`)."""
    for text, name in (
        ("disk is full", "SQLITE_FULL"),
        ("is locked", "SQLITE_BUSY"),
        ("disk I/O error", "SQLITE_IOERR"),
        ("unable to open", "SQLITE_CANTOPEN"),
        ("readonly database", "SQLITE_READONLY"),
    ):
        if text in reason:
            return name
    return ""


def _reason(cause: BaseException) -> str:
    """The driver's message, one short line: libpq's "connection to server at …, port …
    failed: Connection refused" becomes "Connection refused" (the label names the server)."""
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    line = lines[0]
    if line.startswith("connection failed:") and " failed: " in line[18:]:
        line = line.rsplit(" failed: ", 1)[1]
    return " ".join(line.split())[:_REASON_CHARS]


@dataclass
class _Outage:
    fault: Fault
    since: float
    failed: int = 0


class Outages(Periodic):
    """The open outage of each resource; `run()` probes them each `interval` seconds."""

    def __init__(
        self,
        where: Resources,
        probe: Callable[[str], Fault | None],
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.where = where
        self.probe = probe
        self.interval = interval
        self.clock = clock
        self._open: dict[str, _Outage] = {}
        self._lock = threading.Lock()  # background threads note faults too

    def answer(self, exc: BaseException) -> Fault | None:
        """A request failed with `exc`: its fault, counted (the first one logged), or None."""
        fault = fault_of(exc, self.where)
        if fault is not None:
            self.noticed(fault, request=True)
        return fault

    def note(self, exc: BaseException) -> bool:
        """Background work failed with `exc`: True when it is a resource's fault, recorded
        here (its caller need not log it), False when it is not one."""
        if not isinstance(exc, (OSError, SQLAlchemyError)):
            return False
        fault = fault_of(exc, self.where)
        if fault is not None:
            self.noticed(fault, request=False)
        return fault is not None

    def noticed(self, fault: Fault, *, request: bool) -> None:
        """Open the resource's outage when none is (one log line), and count a request."""
        with self._lock:
            outage = self._open.get(fault.resource)
            if outage is None:
                outage = self._open[fault.resource] = _Outage(fault, self.clock())
                log.error(
                    "%s; answering %d until it is back (checked each %g s)",
                    fault.message,
                    fault.status,
                    self.interval,
                )
            if request:
                outage.failed += 1

    def recovered(self, resource: str) -> None:
        """The resource works again: its outage ends (one log line), if one was open."""
        with self._lock:
            outage = self._open.pop(resource, None)
        if outage is not None:
            what = (
                self.where.database
                if resource == DATABASE
                else f"the {DATA_DIR} {self.where.data_dir}"
            )
            log.warning(
                "%s is back after %.1f s; %d request(s) failed meanwhile (%s)",
                what,
                self.clock() - outage.since,
                outage.failed,
                outage.fault.message,
            )

    def current(self) -> list[Fault]:
        """The faults of the outages open now (for /healthz: no I/O)."""
        with self._lock:
            return [outage.fault for outage in self._open.values()]

    async def run(self) -> None:
        """While an outage is open, probe its resource each `interval`; end it when it works."""
        while True:
            await asyncio.sleep(self.interval)
            for resource in [fault.resource for fault in self.current()]:
                if await anyio.to_thread.run_sync(self.probe, resource) is None:
                    self.recovered(resource)
