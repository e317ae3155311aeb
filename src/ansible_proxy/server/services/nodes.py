"""Deleting a node from the fleet: the one implementation behind `bin-manager nodes
delete`, `DELETE /api/v1/admin/nodes/{name}` and the dashboard's node page.

A decommissioned node leaves the fleet with what it reported, and every rollout (no wave
waits for it, it counts towards no halt). Its credential is revoked, so that it cannot
simply come back (its holder is told "revoked"; the host installed again asks as a new
pending enrolment), unless the admin keeps it: then its next tick registers it again. One
activity-log event. The caches of this process drop the name at once; other processes
answer its keepalive from memory for at most their known-node time (writepath/heartbeats.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ansible_proxy.server.auth.credentials import Credentials
from ansible_proxy.server.db import credentials, nodes, queries
from ansible_proxy.server.db.models import Event
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.problems import NotFound
from ansible_proxy.server.rollouts import members
from ansible_proxy.server.writepath.heartbeats import Heartbeats

log = logging.getLogger(__name__)
EVENT = "node-delete"


@dataclass(frozen=True)
class DeletedNode:
    """What a delete did: the rollouts the node left and its credential (revoked, kept)."""

    node_name: str
    rollouts: int
    credential: str


def delete(
    session: Session,
    known: Credentials,
    heartbeats: Heartbeats,
    pointers: PointerCache,
    name: str,
    keep_credential: bool,
    now: datetime,
) -> DeletedNode:
    """Remove node `name` from the fleet (see the module); NotFound when it is not in it."""
    node = queries.find_node(session, name)
    if node is None:
        raise NotFound(
            f"unknown node {name!r}: no node of that name is in the fleet "
            f"(a pending enrolment is dropped with: bin-manager nodes reject {name})"
        )
    if not keep_credential:
        credentials.revoke(session, name, now)
    rollouts = members.forget_node(session, name)
    nodes.remove_node(session, node)
    credential = "kept" if keep_credential else "revoked"
    detail = f"{name} deleted from the fleet: left {rollouts} rollout(s), credential {credential}"
    session.add(Event(at=now, kind=EVENT, bin_name="", arch=None, sha256=None, detail=detail[:300]))
    session.commit()
    if not keep_credential:
        known.forget_name(name)
    heartbeats.forget(name)
    pointers.clear()  # the started waves' members (hotpath/waves.py) are read again
    log.info("node %r deleted (%d rollouts; credential %s)", name, rollouts, credential)
    return DeletedNode(name, rollouts, credential)
