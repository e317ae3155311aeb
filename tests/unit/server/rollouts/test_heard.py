"""The heard clock (rollouts/heard.py): only time a process vouches for counts, never twice,
and a gap no process vouched for is an outage after which every node gets a whole window."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.rollouts.heard import Heard, HeardClock, Step, read, step

CAP = 6.0


@pytest.mark.parametrize(
    ("own", "db_gap", "expected"),
    [
        (2.0, 2.0, Step(2.0, outage=False, moves=True)),  # the usual round
        (2.0, 0.5, Step(0.5, outage=False, moves=True)),  # another process advanced 0.5 s ago
        (2.0, 60.0, Step(2.0, outage=False, moves=True)),  # the database's clock jumped ahead
        (2.0, -3600.0, Step(0.0, outage=False, moves=True)),  # … or back: nothing, not an hour
        (None, 0.5, Step(0.0, outage=False, moves=False)),  # just started; another one vouches
        (None, 40.0, Step(0.0, outage=True, moves=True)),  # a restart: nobody vouched
        (40.0, 40.0, Step(0.0, outage=True, moves=True)),  # a stalled server or locked database
        (40.0, 1.0, Step(0.0, outage=False, moves=False)),  # this one stalled, another did not
        (-5.0, -3600.0, Step(0.0, outage=True, moves=True)),  # a stepped clock of its own
    ],
)
def test_only_vouched_time_counts(own: float | None, db_gap: float, expected: Step) -> None:
    assert step(own, db_gap, CAP) == expected


class Clocks:
    """One database clock, and each process's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.db = 1_000_000.0
        self.mono: dict[str, float] = {}

    def process(self, name: str, interval: float = 2.0) -> HeardClock:
        self.mono[name] = 0.0
        return HeardClock(interval, clock=lambda: self.mono[name], db_clock=lambda _: self.db)

    def wait(self, seconds: float, *running: str) -> None:
        self.db += seconds
        for name in running:
            self.mono[name] += seconds


def test_two_processes_count_each_second_once(sessions: sessionmaker[Session]) -> None:
    clocks = Clocks()
    one, two = clocks.process("one"), clocks.process("two")
    start = one.advance(sessions)  # the first advance after the migration: an outage
    assert start == Heard(0.0, 0.0)
    two.advance(sessions)
    for _ in range(10):
        clocks.wait(1.0, "one", "two")
        one.advance(sessions)
        clocks.wait(1.0, "one", "two")
        two.advance(sessions)
    with sessions() as session:
        assert read(session) == Heard(20.0, 0.0)


def test_a_restart_counts_nothing_and_gives_grace(sessions: sessionmaker[Session]) -> None:
    clocks = Clocks()
    server = clocks.process("old")
    server.advance(sessions)
    clocks.wait(2.0, "old")
    assert server.advance(sessions) == Heard(2.0, 0.0)
    clocks.wait(45.0)  # killed, restarted 45 s later: a new process, a new monotonic clock
    restarted = clocks.process("new")
    assert restarted.advance(sessions) == Heard(2.0, 2.0)  # nothing counted; grace from now
    clocks.wait(2.0, "new")
    assert restarted.advance(sessions) == Heard(4.0, 2.0)


def test_a_failed_advance_vouches_for_nothing_after_it(sessions: sessionmaker[Session]) -> None:
    clocks = Clocks()
    server = clocks.process("one")
    server.advance(sessions)
    clocks.wait(2.0, "one")
    server.advance(sessions)

    def away(_: Session) -> float:
        raise OSError("the database is away")

    server.db_clock = away
    clocks.wait(2.0, "one")
    with pytest.raises(OSError, match="away"):
        server.advance(sessions)
    server.db_clock = lambda _: clocks.db
    clocks.wait(2.0, "one")  # 4 s since its last good advance: within the cap, yet not vouched
    assert server.advance(sessions) == Heard(2.0, 0.0)
    clocks.wait(2.0, "one")
    assert server.advance(sessions) == Heard(4.0, 0.0)
