"""Node credentials and cluster proxies in the database: enrol, approve, revoke, look up.

Only sha256 hashes of tokens are stored (`token_hash`); a token's fingerprint, shown to
operators, is the first 12 hex digits of that hash. No function commits. A request waiting
for approval expires (`pending_since`); one dropped (expired, rejected) leaves no row
behind unless the name holds a credential or a revocation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ansible_proxy.protocol import NodeInfo
from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import NodeCredential, Proxy
from ansible_proxy.server.problems import BadRequest, Conflict, NotFound

FINGERPRINT_LENGTH = 12


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(hashed: str) -> str:
    """What operators compare: the first 12 hex digits of the token's sha256."""
    return hashed[:FINGERPRINT_LENGTH]


class Binding(Enum):
    """What a node name is bound to."""

    NONE = "none"  # never enrolled (or only asked to be)
    ENROLLED = "enrolled"
    REVOKED = "revoked"


@dataclass(frozen=True)
class NameState:
    """A node name's binding, its owning proxy, and whether a request is pending; for a
    revoked name, the credential the revoke ended (its holder alone is told so)."""

    binding: Binding
    proxy: str | None = None
    pending: bool = False
    revoked_hash: str | None = None
    revoked_proxy: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who a bearer token speaks for: one node, or one cluster proxy (its nodes)."""

    kind: str  # "node" or "proxy"
    name: str


class Outcome(Enum):
    ENROLLED = "enrolled"  # now bound (201)
    ALREADY = "already"  # bound to this very credential before (200: a retried request)
    PENDING = "pending"  # waits for an admin's approval (202)


def state_of(row: NodeCredential | None) -> NameState:
    if row is None:
        return NameState(Binding.NONE)
    pending = row.pending_hash is not None or row.pending_proxy is not None
    if row.revoked:
        return NameState(Binding.REVOKED, None, pending, row.revoked_hash, row.revoked_proxy)
    if row.token_hash is not None or row.proxy_name is not None:
        return NameState(Binding.ENROLLED, row.proxy_name, pending)
    return NameState(Binding.NONE, None, pending)


def name_state(session: Session, node_name: str) -> NameState:
    return state_of(session.get(NodeCredential, node_name))


def principal_of(session: Session, hashed: str) -> Principal | None:
    """The node or (unrevoked) proxy whose token has this hash; None for any other."""
    node = session.scalar(
        select(NodeCredential.node_name).where(
            NodeCredential.token_hash == hashed, NodeCredential.revoked.is_(False)
        )
    )
    if node is not None:
        return Principal("node", node)
    proxy = session.scalar(
        select(Proxy.name).where(Proxy.token_hash == hashed, Proxy.revoked_at.is_(None))
    )
    return Principal("proxy", proxy) if proxy is not None else None


def enrol(
    session: Session,
    info: NodeInfo,
    hashed: str | None,
    proxy: str | None,
    trusted: bool,
    address: str,
    now: datetime,
) -> Outcome:
    """Bind `info.nodeName` to a node token hash (or to `proxy`), or record the request.

    `trusted`: the caller showed the enrolment token or is `proxy`; then a free name is
    bound by one conditional UPDATE, so of concurrent requests exactly one wins, and a name
    bound to another credential is a Conflict (revoke first). Anyone else, and anyone for a
    revoked name, gets a pending request, whatever the name's state (nothing to enumerate).
    """
    name = info.nodeName
    _ensure_row(session, name, now)
    if trusted:
        bound = session.execute(
            update(NodeCredential)
            .where(
                NodeCredential.node_name == name,
                NodeCredential.revoked.is_(False),
                NodeCredential.token_hash.is_(None),
                NodeCredential.proxy_name.is_(None),
            )
            .values(
                token_hash=None if proxy else hashed,
                proxy_name=proxy,
                changed_at=now,
                **_NO_PENDING,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(bound, "rowcount", 0) == 1:
            queries.register_node(session, info, now)
            session.flush()
            return Outcome.ENROLLED
    row = session.get(NodeCredential, name, populate_existing=True)  # as committed now
    if row is None:  # a reject removed it meanwhile
        raise Conflict(f"a concurrent request changed node name {name!r}: retry")
    state = state_of(row)
    if state.binding is Binding.ENROLLED:
        same_node = hashed is not None and row.token_hash == hashed
        same_proxy = proxy is not None and row.proxy_name == proxy
        if same_node or same_proxy:
            return Outcome.ALREADY
        if trusted:
            raise Conflict(
                f"node name {name!r} is already enrolled with another credential: "
                f"an admin must revoke it first (bin-manager nodes revoke {name})"
            )
    row.pending_hash, row.pending_proxy = (None, proxy) if proxy else (hashed, None)
    row.pending_info = json.dumps(
        {"cpuArch": info.cpuArch, "osRelease": info.osRelease, "agent": info.binProxyVersion}
    )
    row.pending_address = address[:64]
    row.pending_at = now
    session.flush()
    return Outcome.PENDING


_NO_PENDING: dict[str, None] = dict.fromkeys(
    ("pending_hash", "pending_proxy", "pending_info", "pending_address", "pending_at")
)


def _ensure_row(session: Session, name: str, now: datetime) -> None:
    """A row for `name` (a free one when new), made by an INSERT that a concurrent one's
    row makes a no-op, never an error."""
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        make(NodeCredential)
        .values(node_name=name, revoked=False, changed_at=now)
        .on_conflict_do_nothing(index_elements=["node_name"])
    )


def pending_since(now: datetime, hours: float) -> datetime:
    """Requests made before this have expired (BIN_MANAGER_PENDING_ENROLMENT_HOURS)."""
    return now - timedelta(hours=hours)


def pending_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(NodeCredential)
            .where(NodeCredential.pending_at.is_not(None))
        )
        or 0
    )


def drop_pending(session: Session, where: ColumnElement[bool]) -> int:
    """Drop the requests waiting for approval that match `where`; a row holding nothing
    else goes, others keep their credential or revocation. How many were dropped."""
    waiting = NodeCredential.pending_at.is_not(None)
    nothing_else = (
        NodeCredential.revoked.is_(False)
        & NodeCredential.token_hash.is_(None)
        & NodeCredential.proxy_name.is_(None)
    )
    gone = session.execute(
        delete(NodeCredential)
        .where(where, waiting, nothing_else)
        .execution_options(synchronize_session=False)
    )
    cleared = session.execute(
        update(NodeCredential)
        .where(where, waiting)
        .values(**_NO_PENDING)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(gone, "rowcount", 0) or 0) + int(getattr(cleared, "rowcount", 0) or 0)


def expire_pending(session: Session, since: datetime) -> int:
    """Requests made before `since` (BIN_MANAGER_PENDING_ENROLMENT_HOURS) are dropped."""
    return drop_pending(session, NodeCredential.pending_at < since)


def reject_pending(session: Session, names: Collection[str] | None, before: datetime | None) -> int:
    """Drop the requests of `names`, or those made before `before`, or (both None) all."""
    where: ColumnElement[bool] = NodeCredential.pending_at.is_not(None)
    if names is not None:
        where = NodeCredential.node_name.in_(list(names))
    elif before is not None:
        where = NodeCredential.pending_at < before
    return drop_pending(session, where)


def check_approvable(
    session: Session, node_name: str, since: datetime, refused: Collection[str]
) -> None:
    """Refuse to approve an expired request, or one whose token is a server's own (the
    agent, admin, enrolment or metrics token: `refused` holds their hashes)."""
    row = session.get(NodeCredential, node_name)
    if row is None or row.pending_at is None:
        return  # approve() says there is nothing to approve
    if row.pending_at < since:
        raise NotFound(
            f"the enrolment of {node_name!r} waited since {row.pending_at:%Y-%m-%d %H:%M:%S} "
            "UTC and expired (BIN_MANAGER_PENDING_ENROLMENT_HOURS): the node asks again at "
            "its next tick"
        )
    if row.pending_hash is not None and row.pending_hash in refused:
        raise BadRequest(server_token_refusal())


def server_token_refusal() -> str:
    return (
        "nodeToken is one of the bin-manager's own tokens (agent, admin, enrolment or "
        "metrics): a node's token must be its own (the agent makes one)"
    )


def approve(session: Session, node_name: str, wanted: str | None, now: datetime) -> NodeCredential:
    """The pending request becomes the name's credential; `wanted` must match its
    fingerprint when given. Creates or updates the node with what the request said."""
    row = session.get(NodeCredential, node_name)
    if row is None or (row.pending_hash is None and row.pending_proxy is None):
        raise NotFound(f"no enrolment of {node_name!r} is waiting for approval")
    shown = fingerprint(row.pending_hash) if row.pending_hash else f"proxy:{row.pending_proxy}"
    if wanted is not None and wanted.strip().lower() != shown:
        raise Conflict(
            f"the pending request of {node_name!r} has fingerprint {shown}, not {wanted}: "
            "another request replaced the one you checked"
        )
    if row.pending_hash is not None:
        clash = session.scalar(
            select(NodeCredential.node_name).where(NodeCredential.token_hash == row.pending_hash)
        )
        if clash is not None and clash != node_name:
            raise Conflict(f"that token is already the credential of {clash!r}")
    info = json.loads(row.pending_info or "{}")
    row.token_hash, row.proxy_name = row.pending_hash, row.pending_proxy
    row.revoked = False
    row.revoked_hash = row.revoked_proxy = None
    _clear_pending(row)
    row.changed_at = now
    node_info = NodeInfo(
        nodeName=node_name,
        cpuArch=str(info.get("cpuArch", "")),
        osRelease=str(info.get("osRelease", "")),
        binProxyVersion=str(info.get("agent", "")),
    )
    queries.register_node(session, node_info, now)
    session.flush()
    return row


def revoke(session: Session, node_name: str, now: datetime) -> None:
    """The name's credential stops working at once; it comes back only by approval."""
    row = session.get(NodeCredential, node_name)
    if row is None:
        if queries.find_node(session, node_name) is None:
            raise NotFound(f"unknown node {node_name!r}")
        row = NodeCredential(node_name=node_name, changed_at=now)
        session.add(row)
    if not row.revoked:  # its holder alone is told "revoked" from now on
        row.revoked_hash, row.revoked_proxy = row.token_hash, row.proxy_name
    row.revoked = True
    row.token_hash = None
    row.proxy_name = None
    _clear_pending(row)
    row.changed_at = now
    session.flush()


def _clear_pending(row: NodeCredential) -> None:
    row.pending_hash = row.pending_proxy = row.pending_info = row.pending_address = None
    row.pending_at = None


def pending(
    session: Session, since: datetime | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Requests waiting for approval (made at `since` or later), oldest first."""
    waiting: ColumnElement[bool] = NodeCredential.pending_at.is_not(None)
    if since is not None:
        waiting = NodeCredential.pending_at >= since
    rows = session.scalars(
        select(NodeCredential)
        .where(waiting)
        .order_by(NodeCredential.pending_at, NodeCredential.node_name)
        .limit(limit)
    )
    return [describe(row) for row in rows]


def describe(row: NodeCredential) -> dict[str, Any]:
    """One name's credential as the admin API and the dashboard show it (never a hash)."""
    state = state_of(row)
    info = json.loads(row.pending_info or "{}")
    pending_fp = None
    if row.pending_hash:
        pending_fp = fingerprint(row.pending_hash)
    elif row.pending_proxy:
        pending_fp = f"proxy:{row.pending_proxy}"
    return {
        "nodeName": row.node_name,
        "status": state.binding.value,
        "fingerprint": fingerprint(row.token_hash) if row.token_hash else None,
        "proxy": row.proxy_name,
        "pending": None
        if pending_fp is None
        else {
            "fingerprint": pending_fp,
            "cpuArch": info.get("cpuArch"),
            "osRelease": info.get("osRelease"),
            "agent": info.get("agent"),
            "address": row.pending_address,
            "since": row.pending_at.isoformat() if row.pending_at else None,
        },
    }


def credential_of(session: Session, node_name: str) -> dict[str, Any]:
    row = session.get(NodeCredential, node_name)
    if row is None:
        return {"nodeName": node_name, "status": "none", "fingerprint": None, "proxy": None,
                "pending": None}  # fmt: skip
    return describe(row)


def create_proxy(session: Session, name: str, hashed: str, now: datetime) -> None:
    if session.get(Proxy, name) is not None:
        raise Conflict(f"a proxy named {name!r} exists already (revoked ones keep their name)")
    session.add(Proxy(name=name, token_hash=hashed, created_at=now, revoked_at=None))
    session.flush()


def revoke_proxy(session: Session, name: str, now: datetime) -> None:
    proxy = session.get(Proxy, name)
    if proxy is None:
        raise NotFound(f"unknown proxy {name!r}")
    if proxy.revoked_at is None:
        proxy.revoked_at = now
    session.flush()


def proxies(session: Session) -> list[dict[str, Any]]:
    owned = dict(
        session.execute(
            select(NodeCredential.proxy_name, func.count())
            .where(NodeCredential.proxy_name.is_not(None))
            .group_by(NodeCredential.proxy_name)
        ).all()
    )
    return [
        {
            "name": proxy.name,
            "fingerprint": fingerprint(proxy.token_hash),
            "createdAt": proxy.created_at.isoformat(),
            "revokedAt": proxy.revoked_at.isoformat() if proxy.revoked_at else None,
            "nodes": owned.get(proxy.name, 0),
        }
        for proxy in session.scalars(select(Proxy).order_by(Proxy.name))
    ]
