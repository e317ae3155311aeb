"""What each dashboard page shows, read from the database as plain dicts for the templates.

A node is *stale* when it has not called the API for STALE_AFTER (three missed
one-minute cron ticks). A failed progress report means the node rolled that target back:
after a failed upgrade, or — when the node had upgraded to it fine, or the inspector says
so — a rollback of a version that ran. The report's reason, `who: why` as agents write
it ("inspector: alerts: firing HighErrorRate"), says who decided it and why.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.protocol import normalize_arch
from ansible_proxy.server.db import listings
from ansible_proxy.server.db.models import Bin, Event, Latest, Node, NodeBin, ProgressRow, Release

STALE_AFTER = timedelta(minutes=3)
ACTIVITY_LIMIT = 200
# Who, by the first word of a reason; another first word is shown as part of the reason.
DECIDERS = {
    "watch": "the agent's watch",
    "inspector": "the inspector",
    "pin": "an operator's pin",
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
    (an earlier success in `rows`) or the inspector reports it, else a "failed" upgrade; a
    success a pin caused is "moved-back"; other reports keep their status.
    """
    upgraded: set[tuple[str, str, str]] = set()
    for row in reversed(rows):
        key = (row["nodeName"], row["binName"], row["targetHash"])
        who, _ = _decider(row.get("reason"))
        event = row["status"]
        if event == "failed" and (key in upgraded or who == "inspector"):
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
        "lastSeen": listings.iso(node.last_seen),
        "ago": ago(node.last_seen, now),
        "stale": now - node.last_seen > STALE_AFTER,
    }


def fleet(session: Session, now: datetime) -> dict[str, Any]:
    """Every node, and every bin with its convergence over all arches."""
    nodes = [_node_row(node, now) for node in session.scalars(select(Node).order_by(Node.name))]
    bins = []
    for bin_ in session.scalars(select(Bin).order_by(Bin.name)):
        latest = _latest(session, bin_)
        running = _running(session, bin_)
        current = sum(1 for row in running if latest.get(row["arch"]) == row["sha256"])
        bins.append(
            {
                "name": bin_.name,
                "paused": bin_.paused,
                "latest": latest,
                "pinned": _pinned(session, bin_),
                "nodes": len(running),
                "current": current,
                "percent": _percent(current, len(running)),
            }
        )
    stale = sum(1 for node in nodes if node["stale"])
    return {"nodes": nodes, "bins": bins, "stale": stale}


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


def _running(session: Session, bin_: Bin) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Node, NodeBin)
        .join(NodeBin, NodeBin.node_id == Node.id)
        .where(NodeBin.bin_id == bin_.id)
        .order_by(Node.name)
    )
    return [
        {"node": node.name, "arch": _arch(node.cpu_arch), "sha256": report.sha256}
        for node, report in rows
    ]


def bin_page(session: Session, bin_: Bin, now: datetime) -> dict[str, Any]:
    """Releases per arch with how many nodes run each, convergence, failures, state."""
    latest = _latest(session, bin_)
    running = _running(session, bin_)
    on_sha = Counter((row["arch"], row["sha256"]) for row in running)
    progress = listings.bin_progress(session, bin_)
    failed = Counter(row["targetHash"] for row in progress if row["status"] == "failed")
    releases = listings.releases(session, bin_)
    for release in releases:
        release["running"] = on_sha[(release["arch"], release["sha256"])]
        release["failures"] = failed[release["sha256"]]
    arches = []
    for arch in sorted({release["arch"] for release in releases}):
        total = sum(1 for row in running if row["arch"] == arch)
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
        "running": running,
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
    return {"node": _node_row(node, now), "bins": detail["bins"], "timeline": timeline}


def _arch(cpu_arch: str) -> str:
    return normalize_arch(cpu_arch) or cpu_arch


def release_page(session: Session, bin_: Bin, release: Release, now: datetime) -> dict[str, Any]:
    """One release: is it the latest, who runs it, how often it failed."""
    rows = session.execute(
        select(Node, NodeBin)
        .join(NodeBin, NodeBin.node_id == Node.id)
        .where(NodeBin.bin_id == bin_.id, NodeBin.sha256 == release.sha256)
        .order_by(Node.name)
    )
    nodes = [_node_row(node, now) | {"reportedAt": ago(nb.reported_at, now)} for node, nb in rows]
    failures = session.scalars(
        select(ProgressRow.id).where(
            ProgressRow.bin_id == bin_.id,
            ProgressRow.target_hash == release.sha256,
            ProgressRow.status == "failed",
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
        "failures": len(failures),
    }


def activity(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Publishes, pins, pauses, resumes, and the fleet's upgrades and rollbacks, newest first."""
    items: list[dict[str, Any]] = [
        {"at": event.at, "kind": event.kind, "bin": event.bin_name, "arch": event.arch,
         "sha256": event.sha256, "node": None, "because": None}
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
         "status": row.status, "reason": row.reason, "at": row.reported_at}
        for row, node_name, bin_name in rows
    ]  # fmt: skip
    explain(reports)
    for report in reports:
        kind = "upgrade" if report["event"] == "success" else "rollback"
        items.append(
            {"at": report["at"], "kind": kind, "bin": report["binName"], "arch": None,
             "sha256": report["targetHash"], "node": report["nodeName"],
             "because": report["because"]}
        )  # fmt: skip
    items.sort(key=lambda item: item["at"], reverse=True)
    for item in items:
        item["ago"] = ago(item["at"], now)
        item["at"] = listings.iso(item["at"])
    return items[:ACTIVITY_LIMIT]
