"""Retention on a real SQLite database: history pruned by age and count, nodes forgotten."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.models import Bin, BinReportRow, Node, NodeBin, ProgressRow
from ansible_proxy.server.settings import DEFAULT_FORGET_NODES_DAYS, Settings
from ansible_proxy.server.writepath.retention import Policy, Retention, prune

NOW = datetime(2026, 11, 25, 4, 0, 0)
SHA = "a" * 64


def _node(session: Session, name: str, last_seen: datetime) -> Node:
    node = Node(
        name=name,
        cpu_arch="x86_64",
        os_release="t",
        agent_version="1",
        first_seen=last_seen,
        last_seen=last_seen,
    )
    session.add(node)
    session.flush()
    return node


def _history(session: Session, node: Node, bin_: Bin, ages_days: list[float]) -> None:
    """Progress and report rows, oldest first (as the server appends them)."""
    for age in ages_days:
        at = NOW - timedelta(days=age)
        session.add(ProgressRow(node_id=node.id, bin_id=bin_.id, target_hash=SHA,
                                processing_time=1, status="success", reported_at=at))  # fmt: skip
        session.add(BinReportRow(node_id=node.id, bin_id=bin_.id, sha256=SHA,
                                 version="latest", reported_at=at))  # fmt: skip
    session.flush()


def _setup(session: Session) -> tuple[Node, Bin]:
    bin_ = Bin(name="app", paused=False, created_at=NOW)
    session.add(bin_)
    session.flush()
    return _node(session, "n1", NOW), bin_


def _ages(session: Session, table: type[ProgressRow | BinReportRow]) -> list[float]:
    rows = session.scalars(select(table.reported_at).order_by(table.id))
    return [(NOW - at) / timedelta(days=1) for at in rows]


def test_history_older_than_the_age_limit_is_pruned(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        node, bin_ = _setup(session)
        _history(session, node, bin_, [90, 45, 31, 29, 2, 0])
        pruned = prune(session, Policy(days=30, max_rows=1000), NOW)
        session.commit()
        assert (pruned.progress, pruned.reports, pruned.nodes) == (3, 3, 0)
        assert _ages(session, ProgressRow) == [29, 2, 0]
        assert _ages(session, BinReportRow) == [29, 2, 0]


def test_history_beyond_the_row_limit_keeps_the_newest(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        node, bin_ = _setup(session)
        _history(session, node, bin_, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
        prune(session, Policy(days=30, max_rows=4), NOW)
        session.commit()
        assert _ages(session, ProgressRow) == [3, 2, 1, 0]
        assert _ages(session, BinReportRow) == [3, 2, 1, 0]
        again = prune(session, Policy(days=30, max_rows=4), NOW)
        assert (again.progress, again.reports) == (0, 0)


def test_nodes_gone_for_long_are_forgotten_when_asked(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        active, bin_ = _setup(session)
        gone = _node(session, "gone", NOW - timedelta(days=100))
        _history(session, active, bin_, [1])
        _history(session, gone, bin_, [100])
        for node in (active, gone):
            session.add(NodeBin(node_id=node.id, bin_id=bin_.id, sha256=SHA,
                                version="latest", reported_at=NOW))  # fmt: skip
        session.flush()
        kept = prune(session, Policy(days=365, max_rows=1000), NOW)  # default: never forget
        assert kept.nodes == 0
        pruned = prune(session, Policy(days=365, max_rows=1000, forget_nodes_days=90), NOW)
        session.commit()
        assert pruned.nodes == 1
        assert list(session.scalars(select(Node.name))) == ["n1"]
        assert session.scalar(select(func.count()).select_from(NodeBin)) == 1
        assert session.scalar(select(func.count()).select_from(ProgressRow)) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pruning_runs_at_most_once_per_interval(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        node, bin_ = _setup(session)
        session.commit()
    clock = Clock()
    retention = Retention(sessions, Policy(days=30, max_rows=2), interval=60, clock=clock)

    def add_and_count(age: float) -> int:
        with sessions() as session:
            _history(session, session.get(Node, node.id) or node, bin_, [age])
            session.commit()
        retention.after_write(NOW)
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(ProgressRow)) or 0

    assert add_and_count(5) == 1  # the first write after start prunes (nothing to do)
    assert [add_and_count(age) for age in (4, 3, 2)] == [2, 3, 4]  # not due: kept
    clock.now += 60
    assert add_and_count(1) == 2  # due: pruned to the newest two
    assert retention.last is not None
    assert retention.last.progress == 3


def test_silent_nodes_are_forgotten_after_90_days_by_default() -> None:
    # Without it, anonymous registrations would grow the nodes table forever (issue 14).
    assert Settings().forget_nodes_days == DEFAULT_FORGET_NODES_DAYS == 90
    assert Settings(forget_nodes_days=0).forget_nodes_days == 0  # still possible: never
