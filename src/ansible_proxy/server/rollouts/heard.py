"""The heard clock: seconds during which the server was up, writing and able to hear its
nodes. A rollout measures silence and bakes on it, never on the wall clock.

Every process's rollout checker advances it each interval (`HeardClock.advance`), in one
transaction that first takes the clock's row, so processes and replicas take turns. A
process vouches for the time since its own previous advance when that advance committed
at most `cap` ago by its monotonic clock; the clock then gains that time, bounded by the
database's own clock since the last advance by anyone (so two processes never count the
same second twice). When no process vouched for a gap — a crash, the database away or
locked, a stalled server — the gap counts for nothing and is an outage: `grace_from`
moves to the clock's reading, and every node gets a whole silent window from there.

A write that hears a node (keepalive, registration, progress) sets its `Node.heard` to
the clock's reading inside that same statement (db/heard.py): no server's clock is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.heard import CLOCK_ROW
from ansible_proxy.server.db.models import HeardClockRow

CAP_INTERVALS = 3  # a gap longer than this many check intervals is an outage …
MIN_CAP = 5.0  # … and never one shorter than this (seconds): a busy server checks late
_UNIX_JULIAN_DAY = 2440587.5


@dataclass(frozen=True)
class Heard:
    """The heard clock's reading and the reading at which the last outage ended."""

    now: float
    grace_from: float


@dataclass(frozen=True)
class Step:
    """What one advance does: the seconds it adds, and whether the gap was an outage."""

    seconds: float
    outage: bool
    moves: bool  # whether the database time of the last advance moves to now


def step(own: float | None, db_gap: float, cap: float) -> Step:
    """One advance, pure. `own`: this process's monotonic seconds since its previous advance
    committed (None: it has none); `db_gap`: the database's seconds since anyone's."""
    if own is not None and 0 <= own <= cap:
        return Step(seconds=min(own, max(db_gap, 0.0)), outage=False, moves=True)
    # This process cannot vouch for the gap; another one may have (a short db_gap).
    outage = not 0 <= db_gap <= cap
    return Step(seconds=0.0, outage=outage, moves=outage)


def read(session: Session) -> Heard:
    """The heard clock now (as last advanced); zero before any advance."""
    row = session.get(HeardClockRow, CLOCK_ROW)
    return Heard(0.0, 0.0) if row is None else Heard(row.heard, row.grace_from)


def database_seconds(session: Session) -> float:
    """The database's own clock, in seconds (Unix time): one clock for every replica."""
    if session.get_bind().dialect.name == "sqlite":
        days = session.scalar(select(func.julianday("now")))
        return (float(days or 0.0) - _UNIX_JULIAN_DAY) * 86_400.0
    return float(session.scalar(select(func.extract("epoch", func.clock_timestamp()))) or 0.0)


class HeardClock:
    """This process's side of the heard clock: when its own previous advance committed."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        db_clock: Callable[[Session], float] = database_seconds,
    ) -> None:
        self.cap = max(CAP_INTERVALS * interval, MIN_CAP)
        self.clock = clock
        self.db_clock = db_clock
        self._last_ok: float | None = None

    def advance(self, sessions: sessionmaker[Session]) -> Heard:
        """Advance the clock once (see the module); raises the database's error, after which
        this process vouches for nothing until an advance commits again."""
        ok, self._last_ok = self._last_ok, None
        with sessions() as session:
            # Take the row first: the gap is measured once it is ours (a locked database
            # is waited for before, not counted as heard).
            taken = session.execute(
                update(HeardClockRow)
                .where(HeardClockRow.id == CLOCK_ROW)
                .values(heard=HeardClockRow.heard)
                .execution_options(synchronize_session=False)
            )
            now = self.clock()
            db_now = self.db_clock(session)
            row = session.get(HeardClockRow, CLOCK_ROW) if getattr(taken, "rowcount", 0) else None
            if row is None:  # lost (or never made): start again from an outage
                row = HeardClockRow(id=CLOCK_ROW, heard=0.0, db_at=0.0, grace_from=0.0)
                session.add(row)
            done = step(None if ok is None else now - ok, db_now - row.db_at, self.cap)
            row.heard += done.seconds
            if done.moves:
                row.db_at = db_now
            if done.outage:
                row.grace_from = row.heard
            reading = Heard(row.heard, row.grace_from)
            session.commit()
        self._last_ok = now
        return reading
