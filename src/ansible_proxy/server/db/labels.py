"""Labels an admin set on node names (`bin-manager nodes label`), kept apart from the
labels nodes report themselves (NODE_LABELS, `nodes.labels`): a node cannot set these.
No function commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.names import format_labels, parse_labels
from ansible_proxy.server.db.models import NodeAdminLabels


def admin_labels(session: Session, node_name: str) -> dict[str, str]:
    """The labels an admin set on `node_name` (none: {})."""
    row = session.get(NodeAdminLabels, node_name)
    return _parsed(row.labels) if row is not None else {}


def admin_labels_of(session: Session, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """name → its admin labels, for the names that have some."""
    wanted = list(names)
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(wanted), 500):  # bounded IN lists
        rows = session.scalars(
            select(NodeAdminLabels).where(
                NodeAdminLabels.node_name.in_(wanted[start : start + 500])
            )
        )
        found.update({row.node_name: _parsed(row.labels) for row in rows})
    return found


def set_admin_labels(
    session: Session, node_name: str, labels: Mapping[str, str], now: datetime
) -> None:
    """Replace the admin labels of `node_name` (checked by the caller); {} removes them."""
    row = session.get(NodeAdminLabels, node_name)
    if not labels:
        if row is not None:
            session.delete(row)
        session.flush()
        return
    if row is None:
        row = NodeAdminLabels(node_name=node_name)
        session.add(row)
    row.labels = format_labels(dict(labels))
    row.updated_at = now
    session.flush()


def _parsed(text: str) -> dict[str, str]:
    try:
        return parse_labels(text)
    except ValueError:  # written by this module, checked: never expected
        return {}
