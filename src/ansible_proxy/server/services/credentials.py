"""Approving and revoking node credentials and cluster proxies: the one implementation
behind the admin API (api/credentials.py) and the dashboard's forms
(dashboard/credentials.py). Each commits, drops what it changed from this process'
credential cache (other processes' CredentialWatch sees the row within about a second)
and logs (a fingerprint at most, never a token).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ansible_proxy.server.auth.credentials import Credentials
from ansible_proxy.server.db import credentials as db

log = logging.getLogger(__name__)


def approve(
    session: Session, nodes: Credentials, node_name: str, fingerprint: str | None, now: datetime
) -> dict[str, Any]:
    """The pending request of `node_name` becomes its credential; what it is now."""
    row = db.approve(session, node_name, fingerprint, now)
    hashed = row.token_hash
    session.commit()
    nodes.forget_name(node_name, hashed)  # its token was refused until now
    log.info("node %r approved", node_name)
    return db.describe(row)


def revoke(session: Session, nodes: Credentials, node_name: str, now: datetime) -> None:
    """The node's credential stops working at once (in this process; others within about
    a second)."""
    db.revoke(session, node_name, now)
    session.commit()
    nodes.forget_name(node_name)
    log.info("node %r revoked", node_name)


def revoke_proxy(session: Session, nodes: Credentials, name: str, now: datetime) -> None:
    """The proxy's token stops working; its nodes stay bound to it until revoked."""
    db.revoke_proxy(session, name, now)
    session.commit()
    nodes.forget_changed((), [name])
    log.info("proxy %r revoked", name)
