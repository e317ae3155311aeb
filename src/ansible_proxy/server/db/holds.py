"""The bins each node holds (`ansible-proxy hold BIN`), as its keepalive reports them
(`held: {bin: reason}`; absent: none). A staged rollout skips a held node rather than
wait for it (server/rollouts/). No function commits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import NodeHold

HELD = "held"  # the reason shown when a node gave none


def record_holds(
    session: Session, node_name: str, held: Mapping[str, str] | None, now: datetime
) -> None:
    """Make the node's holds what its keepalive says; a hold kept keeps its `since`."""
    wanted = {name: (reason or HELD)[:300] for name, reason in (held or {}).items()}
    rows = {row.bin_name: row for row in session.scalars(_of(node_name))}
    gone = [name for name in rows if name not in wanted]
    if gone:
        session.execute(
            delete(NodeHold).where(NodeHold.node_name == node_name, NodeHold.bin_name.in_(gone))
        )
    for name, reason in wanted.items():
        row = rows.get(name)
        if row is None:
            session.add(NodeHold(node_name=node_name, bin_name=name, reason=reason, since=now))
        elif row.reason != reason:
            row.reason = reason


def _of(node_name: str) -> Select[NodeHold]:
    return select(NodeHold).where(NodeHold.node_name == node_name)


def holds_of(session: Session, node_name: str) -> dict[str, str]:
    """bin → reason of each bin the node holds."""
    return {row.bin_name: row.reason for row in session.scalars(_of(node_name))}


def held_nodes(session: Session, bin_name: str) -> dict[str, str]:
    """node → reason of the nodes that hold `bin_name`."""
    query = select(NodeHold.node_name, NodeHold.reason).where(NodeHold.bin_name == bin_name)
    return {name: reason for name, reason in session.execute(query).all()}
