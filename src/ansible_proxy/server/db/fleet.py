"""What the dashboard reads besides db/listings.py: how many nodes run each release (grouped
in SQL, never a row per node), a bin's latest and pinned arches, one page of the nodes that
run a bin or one release, stale nodes, a release's failures and the activity log's rows.

Plain values and ORM rows out; dashboard/views.py words them for the pages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ansible_proxy.protocol import normalize_arch
from ansible_proxy.server.db.models import Bin, Event, Node, NodeBin, ProgressRow
from ansible_proxy.server.db.pages import Cursor, Page, by_node_name


def arch_of(cpu_arch: str) -> str:
    """A node's reported arch as releases name it (amd64 → x86_64); unknown ones as given."""
    return normalize_arch(cpu_arch) or cpu_arch


def all_bins(session: Session) -> list[Bin]:
    return list(session.scalars(select(Bin).order_by(Bin.name)))


def nodes_page(session: Session, where: Cursor) -> Page:
    """One page of nodes by name: rows of (Node,)."""
    return by_node_name(session, select(Node), where)


def stale_count(session: Session, seen_before: datetime) -> int:
    """How many nodes have not called since `seen_before`."""
    query = select(func.count()).select_from(Node).where(Node.last_seen < seen_before)
    return session.scalar(query) or 0


def on_sha(session: Session, bin_: Bin | None = None) -> dict[int, Counter[tuple[str, str]]]:
    """Per bin id, how many nodes of each arch last reported running each sha256: counted in
    SQL (a row per bin, arch and sha)."""
    query = (
        select(NodeBin.bin_id, Node.cpu_arch, NodeBin.sha256, func.count())
        .join(Node, Node.id == NodeBin.node_id)
        .group_by(NodeBin.bin_id, Node.cpu_arch, NodeBin.sha256)
    )
    if bin_ is not None:
        query = query.where(NodeBin.bin_id == bin_.id)
    result: dict[int, Counter[tuple[str, str]]] = {}
    for bin_id, cpu_arch, sha, count in session.execute(query):
        result.setdefault(bin_id, Counter())[(arch_of(cpu_arch), sha)] += count
    return result


def agent_running(session: Session, agent: Bin, nodes: list[Node]) -> dict[int, str]:
    """By node id, the sha256 of `agent` each of `nodes` last reported (one query)."""
    rows = session.execute(
        select(NodeBin.node_id, NodeBin.sha256).where(
            NodeBin.bin_id == agent.id, NodeBin.node_id.in_([node.id for node in nodes])
        )
    )
    return {node_id: sha for node_id, sha in rows}


def pinned_arches(session: Session, bin_: Bin) -> set[str]:
    """Arches whose latest was last set by a pin rather than a publish."""
    last: dict[str, str] = {}
    rows = session.scalars(
        select(Event)
        .where(Event.bin_name == bin_.name, Event.kind.in_(("publish", "pin")))
        .order_by(Event.id)
    )
    for event in rows:
        if event.arch:
            last[event.arch] = event.kind
    return {arch for arch, kind in last.items() if kind == "pin"}


def bin_runners(session: Session, bin_: Bin, where: Cursor) -> Page:
    """One page of the nodes that reported running this bin: rows of (Node, NodeBin)."""
    query = select(Node, NodeBin).join(NodeBin, NodeBin.node_id == Node.id)
    return by_node_name(session, query.where(NodeBin.bin_id == bin_.id), where)


def release_runners(session: Session, bin_: Bin, sha256: str, where: Cursor) -> Page:
    """One page of the nodes whose last report of this bin is `sha256`: (Node, NodeBin)."""
    query = select(Node, NodeBin).join(NodeBin, NodeBin.node_id == Node.id)
    running = query.where(NodeBin.bin_id == bin_.id, NodeBin.sha256 == sha256)
    return by_node_name(session, running, where)


def release_failures(session: Session, bin_: Bin, sha256: str) -> int:
    """How many failed reports of this target were the release's (not the host's trouble,
    not a refusal)."""
    query = select(func.count()).where(
        ProgressRow.bin_id == bin_.id,
        ProgressRow.target_hash == sha256,
        ProgressRow.status == "failed",
        ProgressRow.cause.is_distinct_from("host"),
        ProgressRow.cause.is_distinct_from("refused"),
    )
    return session.scalar(query) or 0


def recent_events(session: Session, limit: int) -> list[Event]:
    """The activity log's newest rows (publishes, pins, rollout steps, …)."""
    return list(session.scalars(select(Event).order_by(Event.id.desc()).limit(limit)))


@dataclass(frozen=True)
class Outcome:
    """A node's report that an upgrade succeeded or failed."""

    node_name: str
    bin_name: str
    target_hash: str
    status: str
    reason: str | None
    cause: str | None
    at: datetime


def outcomes(session: Session, limit: int) -> list[Outcome]:
    """The newest success and failed reports, newest first."""
    rows = session.execute(
        select(ProgressRow, Node.name, Bin.name)
        .join(Node, Node.id == ProgressRow.node_id)
        .join(Bin, Bin.id == ProgressRow.bin_id)
        .where(ProgressRow.status.in_(("success", "failed")))
        .order_by(ProgressRow.id.desc())
        .limit(limit)
    )
    return [
        Outcome(node_name, bin_name, row.target_hash, row.status, row.reason, row.cause,
                row.reported_at)
        for row, node_name, bin_name in rows
    ]  # fmt: skip
