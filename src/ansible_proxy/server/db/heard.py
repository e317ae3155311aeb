"""The heard clock's reading as SQL, for the writes that hear a node (keepalives,
registrations, progress): its `Node.heard` is set inside the same statement, from the
database, so no server's clock is used. server/rollouts/heard.py advances the clock."""

from __future__ import annotations

from sqlalchemy import ScalarSelect, select

from ansible_proxy.server.db.models import HeardClockRow, Node

CLOCK_ROW = 1


def reading() -> ScalarSelect[float]:
    """The heard clock's reading (NULL before its row exists: such a node is not heard)."""
    return select(HeardClockRow.heard).where(HeardClockRow.id == CLOCK_ROW).scalar_subquery()


def hear(node: Node) -> None:
    """The node is heard now: its `heard` becomes the clock's reading in its next UPDATE."""
    node.heard = reading()  # SQL, evaluated in the UPDATE or INSERT of the flush
