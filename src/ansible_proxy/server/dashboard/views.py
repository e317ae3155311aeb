"""What each dashboard page shows, read from the database as plain dicts for the templates.

A node is *stale* when it has not called the API for STALE_AFTER (three missed
one-minute cron ticks). A failed progress report means the node rolled that target back:
after a failed upgrade, or — when the node had upgraded to it fine, or the inspector says
so — a rollback of a version that ran. The report's reason, `who: why` as agents write
it ("inspector: alerts: firing HighErrorRate"), says who decided it and why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ansible_proxy.protocol import normalize_arch
from ansible_proxy.server.db import listings
from ansible_proxy.server.db.models import Bin, Event, Latest, Node, NodeBin, ProgressRow, Release
from ansible_proxy.server.db.pages import DEFAULT_LIMIT, Cursor, Page, by_node_name
from ansible_proxy.server.db.signatures import signed_by_release

STALE_AFTER = timedelta(minutes=3)
AGENT_BIN = "ansible-proxy"  # the one-file agent, published like any bin (self-update)
ACTIVITY_LIMIT = 200
# The badge of an activity kind (others are "ok"): what went wrong, what an operator forced.
TONES = {
    "rollback": "bad",
    "rollout-halt": "bad",
    "rollout-revert": "bad",
    "rollout-node-failed": "bad",
    "rollout-node-trouble": "warn",
    "host-trouble": "warn",
    "refused": "warn",
    "pin": "warn",
    "pause": "warn",
    "rollout-superseded": "warn",
    "node-delete": "warn",
    "rollout-start": "info",
    "rollout-promote": "info",
    "rollout-policy": "info",
}
# A failed report whose cause was not the release (docs/api.md, `cause`): shown apart.
NOT_THE_RELEASE = {"host": "host-trouble", "refused": "refused"}
# Who, by the first word of a reason; another first word is shown as part of the reason.
DECIDERS = {
    "watch": "the agent's watch",
    "inspector": "the inspector",
    # the agent says "pin:" for any move back the bin-manager told it: a pin or a
    # reverted rollout (it cannot tell which), so the label names neither alone
    "pin": "the bin-manager's move back (a pin or a reverted rollout)",
}


def ago(moment: datetime | None, now: datetime) -> str:
    """'42 s ago', '5 min ago', '3 h ago', '2 d ago' (or 'never')."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _decider(reason: str | None) -> tuple[str | None, str]:
    """(who, why) of a reason: who is a key of DECIDERS, or None (the whole reason is why)."""
    who, colon, why = (reason or "").partition(":")
    key = who.strip().lower()
    if colon and key in DECIDERS:
        return key, why.strip()
    return None, reason or ""


def because(reason: str | None) -> str | None:
    """A progress reason as the dashboard words it: "by the inspector: alerts: …"."""
    if not reason:
        return None
    who, why = _decider(reason)
    if who is None:
        return f"— {why}"
    return f"by {DECIDERS[who]}: {why}" if why else f"by {DECIDERS[who]}"


def explain(rows: list[dict[str, Any]]) -> None:
    """Set `event` and `because` on progress rows (listings' shape), given newest first.

    event: a failed report is a "rollback" when the node had upgraded to that target fine
    (an earlier success in `rows`) or the inspector reports it, else a "failed" upgrade,
    unless its cause was not the release (NOT_THE_RELEASE: "host-trouble", "refused"); a
    success a pin caused is "moved-back"; other reports keep their status.
    """
    upgraded: set[tuple[str, str, str]] = set()
    for row in reversed(rows):
        key = (row["nodeName"], row["binName"], row["targetHash"])
        who, _ = _decider(row.get("reason"))
        event = row["status"]
        if event == "failed" and row.get("cause") in NOT_THE_RELEASE:
            event = NOT_THE_RELEASE[row["cause"]]
        elif event == "failed" and (key in upgraded or who == "inspector"):
            event = "rollback"
        elif event == "success" and who == "pin":
            event = "moved-back"
        if row["status"] == "success":
            upgraded.add(key)
        row["event"] = event
        row["because"] = because(row.get("reason"))


def _node_row(node: Node, now: datetime) -> dict[str, Any]:
    return {
        "name": node.name,
        "arch": node.cpu_arch,
        "os": node.os_release,
        "agent": node.agent_version,
        "labels": node.labels or "",
        "lastSeen": listings.iso(node.last_seen),
        "ago": ago(node.last_seen, now),
        "stale": now - node.last_seen > STALE_AFTER,
    }


def fleet(session: Session, now: datetime, where: Cursor) -> dict[str, Any]:
    """One page of nodes, how many there are (and stale), every bin's convergence."""
    page = by_node_name(session, select(Node), where)
    nodes = [_node_row(node, now) for (node,) in page.rows]
    agent = session.scalar(select(Bin).where(Bin.name == AGENT_BIN))
    if agent is not None:
        _mark_agents_behind(session, agent, [node for (node,) in page.rows], nodes)
    on_sha = _on_sha(session)
    bins = []
    node_total = listings.node_count(session)
    agents: dict[str, int] | None = None
    for bin_ in session.scalars(select(Bin).order_by(Bin.name)):
        latest = _latest(session, bin_)
        counts = on_sha.get(bin_.id, Counter())
        total = sum(counts.values())
        current = sum(n for (arch, sha), n in counts.items() if latest.get(arch) == sha)
        if bin_.name == AGENT_BIN:  # a node that reports no agent release is behind too
            agents = {"behind": node_total - current, "nodes": node_total}
        bins.append(
            {
                "name": bin_.name,
                "paused": bin_.paused,
                "latest": latest,
                "pinned": _pinned(session, bin_),
                "nodes": total,
                "current": current,
                "percent": _percent(current, total),
            }
        )
    stale = session.scalar(
        select(func.count()).select_from(Node).where(Node.last_seen < now - STALE_AFTER)
    )
    return {
        "nodes": nodes,
        "pager": pager(page, where),
        "total": node_total,
        "bins": bins,
        "stale": stale or 0,
        # How many nodes do not run the latest published agent for their arch
        # (docs/agent.md, Self-update).
        "agents": agents,
    }


def _mark_agents_behind(
    session: Session, agent: Bin, page: list[Node], rows: list[dict[str, Any]]
) -> None:
    """`agentBehind` on each row of this page whose node runs another agent than the
    latest published for its arch (one query for the page, not one per node)."""
    latest = _latest(session, agent)
    running = dict(
        session.execute(
            select(NodeBin.node_id, NodeBin.sha256).where(
                NodeBin.bin_id == agent.id, NodeBin.node_id.in_([node.id for node in page])
            )
        ).all()
    )
    for node, row in zip(page, rows, strict=True):
        published = latest.get(_arch(node.cpu_arch))
        row["agentBehind"] = published is not None and running.get(node.id) != published


def _on_sha(session: Session, bin_: Bin | None = None) -> dict[int, Counter[tuple[str, str]]]:
    """Per bin, how many nodes of each arch last reported running each sha256: grouped
    counts in SQL (one row per bin, arch and sha), never a row per node."""
    query = (
        select(NodeBin.bin_id, Node.cpu_arch, NodeBin.sha256, func.count())
        .join(Node, Node.id == NodeBin.node_id)
        .group_by(NodeBin.bin_id, Node.cpu_arch, NodeBin.sha256)
    )
    if bin_ is not None:
        query = query.where(NodeBin.bin_id == bin_.id)
    result: dict[int, Counter[tuple[str, str]]] = {}
    for bin_id, cpu_arch, sha, count in session.execute(query):
        result.setdefault(bin_id, Counter())[(_arch(cpu_arch), sha)] += count
    return result


def pager(page: Page, where: Cursor) -> dict[str, Any]:
    """The count and the first/previous/next links (relative "?…" URLs) of a node page."""
    keep = {"prefix": where.prefix} if where.prefix else {}
    if where.limit != DEFAULT_LIMIT:
        keep["limit"] = str(where.limit)
    names = [_name_of(row) for row in (page.rows[0], page.rows[-1])] if page.rows else [None, None]
    return {
        "total": page.total,
        "prefix": where.prefix,
        "first_name": names[0] if page.next or page.previous else None,
        "last_name": names[1],
        "first": "?" + urlencode(keep),
        "previous": page.previous and "?" + urlencode({"before": page.previous, **keep}),
        "next": page.next and "?" + urlencode({"after": page.next, **keep}),
    }


def _name_of(row: Any) -> str:
    """A page row's node name: a Node entity in a row, or a view's dict."""
    if isinstance(row, dict):
        return str(row.get("name") or row.get("node"))
    return str(row[0].name)


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def _latest(session: Session, bin_: Bin) -> dict[str, str]:
    rows = session.execute(
        select(Latest.arch, Release.sha256)
        .join(Release, Release.id == Latest.release_id)
        .where(Latest.bin_id == bin_.id)
    )
    return dict(sorted((arch, sha) for arch, sha in rows))


def _pinned(session: Session, bin_: Bin) -> set[str]:
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


def _running(session: Session, bin_: Bin, where: Cursor) -> Page:
    """One page of the nodes that reported running this bin, with what they run."""
    query = select(Node, NodeBin).join(NodeBin, NodeBin.node_id == Node.id)
    page = by_node_name(session, query.where(NodeBin.bin_id == bin_.id), where)
    rows = [
        {"node": node.name, "arch": _arch(node.cpu_arch), "sha256": report.sha256}
        for node, report in page.rows
    ]
    return replace(page, rows=rows)


def bin_page(session: Session, bin_: Bin, now: datetime, where: Cursor) -> dict[str, Any]:
    """Releases per arch with how many nodes run each, convergence, failures, state, and
    one page of the nodes running it."""
    latest = _latest(session, bin_)
    running = _running(session, bin_, where)
    on_sha = _on_sha(session, bin_).get(bin_.id, Counter())
    progress = listings.bin_progress(session, bin_)
    failed = Counter(
        row["targetHash"]
        for row in progress
        if row["status"] == "failed" and row.get("cause") not in NOT_THE_RELEASE
    )
    releases = listings.releases(session, bin_)
    signed = signed_by_release(session, bin_.id)
    for release in releases:
        release["running"] = on_sha[(release["arch"], release["sha256"])]
        release["signed"] = signed.get((release["arch"], release["sha256"]))
        release["failures"] = failed[release["sha256"]]
    arches = []
    for arch in sorted({release["arch"] for release in releases}):
        total = sum(n for (on_arch, _), n in on_sha.items() if on_arch == arch)
        current = on_sha[(arch, latest.get(arch, ""))]
        arches.append(
            {
                "arch": arch,
                "latest": latest.get(arch),
                "nodes": total,
                "current": current,
                "percent": _percent(current, total),
                "releases": [r for r in releases if r["arch"] == arch],
            }
        )
    explain(progress)
    failures = [row for row in progress if row["status"] == "failed"]
    for row in failures:
        row["ago"] = ago(_parse(row["reportedAt"]), now)
    return {
        "name": bin_.name,
        "paused": bin_.paused,
        "pinned": _pinned(session, bin_),
        "arches": arches,
        "failures": failures,
        "running": running.rows,
        "pager": pager(running, where),
    }


def _parse(iso_text: str | None) -> datetime | None:
    return None if iso_text is None else datetime.fromisoformat(iso_text.rstrip("Z"))


def node_page(session: Session, node: Node, now: datetime) -> dict[str, Any]:
    """The node's info, what it runs (and whether that is the latest), its timeline."""
    detail = listings.node_detail(session, node)
    for row in detail["bins"]:
        bin_ = session.scalars(select(Bin).where(Bin.name == row["binName"])).one()
        latest = _latest(session, bin_)
        row["latest"] = latest.get(_arch(node.cpu_arch)) == row["sha256"]
    explain(detail["progress"])
    timeline = [
        {"at": row["reportedAt"], "kind": row["event"], "bin": row["binName"],
         "sha256": row["targetHash"], "seconds": row["processingTime"],
         "because": row["because"]}
        for row in detail["progress"]
    ] + [
        {"at": row["reportedAt"], "kind": "reported", "bin": row["binName"],
         "sha256": row["sha256"], "seconds": None, "because": None}
        for row in detail["reports"]
    ]  # fmt: skip
    timeline.sort(key=lambda item: item["at"] or "", reverse=True)
    for item in timeline:
        item["ago"] = ago(_parse(item["at"]), now)
    shown = {**_node_row(node, now), "adminLabels": detail["adminLabels"]}
    return {"node": shown, "bins": detail["bins"], "timeline": timeline}


def _arch(cpu_arch: str) -> str:
    return normalize_arch(cpu_arch) or cpu_arch


def release_page(
    session: Session, bin_: Bin, release: Release, now: datetime, where: Cursor
) -> dict[str, Any]:
    """One release: is it the latest, who runs it (one page of them), how often it failed."""
    query = select(Node, NodeBin).join(NodeBin, NodeBin.node_id == Node.id)
    page = by_node_name(
        session, query.where(NodeBin.bin_id == bin_.id, NodeBin.sha256 == release.sha256), where
    )
    nodes = [
        _node_row(node, now) | {"reportedAt": ago(nb.reported_at, now)} for node, nb in page.rows
    ]
    failures = session.scalars(
        select(ProgressRow.id).where(
            ProgressRow.bin_id == bin_.id,
            ProgressRow.target_hash == release.sha256,
            ProgressRow.status == "failed",
            ProgressRow.cause.is_distinct_from("host"),
            ProgressRow.cause.is_distinct_from("refused"),
        )
    ).all()
    return {
        "bin": bin_.name,
        "paused": bin_.paused,
        "arch": release.arch,
        "sha256": release.sha256,
        "size": release.size,
        "published": listings.iso(release.published_at),
        "publishedAgo": ago(release.published_at, now),
        "latest": _latest(session, bin_).get(release.arch) == release.sha256,
        "nodes": nodes,
        "pager": pager(page, where),
        "failures": len(failures),
    }


def activity(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Publishes, pins, pauses, resumes, rollout steps (with their detail), and the fleet's
    upgrades and rollbacks, newest first."""
    items: list[dict[str, Any]] = [
        {"at": event.at, "kind": event.kind, "bin": event.bin_name, "arch": event.arch,
         "sha256": event.sha256, "node": None, "because": event.detail}
        for event in session.scalars(
            select(Event).order_by(Event.id.desc()).limit(ACTIVITY_LIMIT)
        )
    ]  # fmt: skip
    rows = session.execute(
        select(ProgressRow, Node.name, Bin.name)
        .join(Node, Node.id == ProgressRow.node_id)
        .join(Bin, Bin.id == ProgressRow.bin_id)
        .where(ProgressRow.status.in_(("success", "failed")))
        .order_by(ProgressRow.id.desc())
        .limit(ACTIVITY_LIMIT)
    )
    reports = [
        {"nodeName": node_name, "binName": bin_name, "targetHash": row.target_hash,
         "status": row.status, "reason": row.reason, "cause": row.cause, "at": row.reported_at}
        for row, node_name, bin_name in rows
    ]  # fmt: skip
    explain(reports)
    for report in reports:
        cause = str(report["cause"])
        kind = "upgrade" if report["event"] == "success" else NOT_THE_RELEASE.get(cause, "rollback")
        items.append(
            {"at": report["at"], "kind": kind, "bin": report["binName"], "arch": None,
             "sha256": report["targetHash"], "node": report["nodeName"],
             "because": report["because"]}
        )  # fmt: skip
    items.sort(key=lambda item: item["at"], reverse=True)
    for item in items:
        item["tone"] = TONES.get(item["kind"], "ok")
        item["ago"] = ago(item["at"], now)
        item["at"] = listings.iso(item["at"])
    return items[:ACTIVITY_LIMIT]
