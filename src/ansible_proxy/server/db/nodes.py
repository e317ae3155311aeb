"""A node's rows, removed when an admin deletes it from the fleet (services/nodes.py): what
it reported (runs, reports, progress), the holds it reported and the labels an admin set.
Its credential row is not this module's (db/credentials.py). No function commits."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import (
    BinReportRow,
    Node,
    NodeAdminLabels,
    NodeBin,
    NodeHold,
    ProgressRow,
)


def remove_node(session: Session, node: Node) -> None:
    """Delete `node` and every row about it (the bins' counts of who runs what follow)."""
    for table in (ProgressRow, BinReportRow, NodeBin):
        session.execute(delete(table).where(table.node_id == node.id))
    session.execute(delete(NodeHold).where(NodeHold.node_name == node.name))
    session.execute(delete(NodeAdminLabels).where(NodeAdminLabels.node_name == node.name))
    session.execute(delete(Node).where(Node.id == node.id))
