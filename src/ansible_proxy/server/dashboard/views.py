"""What each dashboard page shows: read through db/ (fleet.py, listings.py) and handed to
the templates as the TypedDicts of view_types.py.

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
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from ansible_proxy.server.dashboard.view_types import (
    ActivityItem,
    AgentsBehind,
    ArchRow,
    BinPage,
    BinRow,
    FailureRow,
    FleetPage,
    NodeBinRow,
    NodePage,
    NodeRow,
    Pager,
    ReleaseNodeRow,
    ReleasePage,
    ReleaseRow,
    RunningRow,
    TimelineItem,
)
from ansible_proxy.server.db import fleet as db
from ansible_proxy.server.db import listings, queries
from ansible_proxy.server.db.fleet import arch_of
from ansible_proxy.server.db.listings import latest_by_arch
from ansible_proxy.server.db.models import Bin, Node, Release
from ansible_proxy.server.db.pages import DEFAULT_LIMIT, Cursor, Page
from ansible_proxy.server.db.signatures import signed_by_release

STALE_AFTER = timedelta(minutes=3)
SERVER_STEP = "bin-manager"  # who made a change no operator made (a wave's bake, a revert)
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


def _node_row(node: Node, now: datetime) -> NodeRow:
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


def fleet(session: Session, now: datetime, where: Cursor) -> FleetPage:
    """One page of nodes, how many there are (and stale), every bin's convergence."""
    page = db.nodes_page(session, where)
    shown = [node for (node,) in page.rows]
    nodes = [_node_row(node, now) for node in shown]
    agent = queries.find_bin(session, AGENT_BIN)
    latest_agent = latest_by_arch(session, agent) if agent is not None else {}
    running = db.agent_running(session, agent, shown) if agent is not None else {}
    for node, row in zip(shown, nodes, strict=True):
        published = latest_agent.get(arch_of(node.cpu_arch))
        row["agentBehind"] = published is not None and running.get(node.id) != published
    on_sha = db.on_sha(session)
    bins: list[BinRow] = []
    node_total = listings.node_count(session)
    agents: AgentsBehind | None = None
    for bin_ in db.all_bins(session):
        latest = latest_by_arch(session, bin_)
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
                "pinned": db.pinned_arches(session, bin_),
                "nodes": total,
                "current": current,
                "percent": _percent(current, total),
            }
        )
    return {
        "nodes": nodes,
        "pager": pager(page, where),
        "total": node_total,
        "bins": bins,
        "stale": db.stale_count(session, now - STALE_AFTER),
        # How many nodes do not run the latest published agent for their arch
        # (docs/agent.md, Self-update).
        "agents": agents,
    }


def pager(page: Page, where: Cursor) -> Pager:
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
        "previous": "?" + urlencode({"before": page.previous, **keep}) if page.previous else None,
        "next": "?" + urlencode({"after": page.next, **keep}) if page.next else None,
    }


def _name_of(row: Any) -> str:
    """A page row's node name: the Node entity first in the row."""
    return str(row[0].name)


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def bin_page(session: Session, bin_: Bin, now: datetime, where: Cursor) -> BinPage:
    """Releases per arch with how many nodes run each, convergence, failures, state, and
    one page of the nodes running it."""
    latest = latest_by_arch(session, bin_)
    running = db.bin_runners(session, bin_, where)
    on_sha = db.on_sha(session, bin_).get(bin_.id, Counter())
    progress = listings.bin_progress(session, bin_)
    failed = Counter(
        row["targetHash"]
        for row in progress
        if row["status"] == "failed" and row.get("cause") not in NOT_THE_RELEASE
    )
    signed = signed_by_release(session, bin_.id)
    releases: list[ReleaseRow] = [
        {
            "binName": release["binName"],
            "arch": release["arch"],
            "sha256": release["sha256"],
            "size": release["size"],
            "publishedAt": release["publishedAt"],
            "latest": release["latest"],
            "running": on_sha[(release["arch"], release["sha256"])],
            "signed": signed.get((release["arch"], release["sha256"])),
            "failures": failed[release["sha256"]],
        }
        for release in listings.releases(session, bin_)
    ]
    arches: list[ArchRow] = []
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
    failures: list[FailureRow] = [
        {
            "nodeName": row["nodeName"],
            "targetHash": row["targetHash"],
            "processingTime": row["processingTime"],
            "reportedAt": row["reportedAt"],
            "event": row["event"],
            "because": row["because"],
            "ago": ago(_parse(row["reportedAt"]), now),
        }
        for row in progress
        if row["status"] == "failed"
    ]
    shown: list[RunningRow] = [
        {"node": node.name, "arch": arch_of(node.cpu_arch), "sha256": report.sha256}
        for node, report in running.rows
    ]
    return {
        "name": bin_.name,
        "paused": bin_.paused,
        "pinned": db.pinned_arches(session, bin_),
        "arches": arches,
        "failures": failures,
        "running": shown,
        "pager": pager(running, where),
    }


def _parse(iso_text: str | None) -> datetime | None:
    return None if iso_text is None else datetime.fromisoformat(iso_text.rstrip("Z"))


def node_page(session: Session, node: Node, now: datetime) -> NodePage:
    """The node's info, what it runs (and whether that is the latest), its timeline."""
    detail = listings.node_detail(session, node)
    bins: list[NodeBinRow] = []
    for row in detail["bins"]:
        bin_ = queries.require_bin(session, row["binName"])
        latest = latest_by_arch(session, bin_).get(arch_of(node.cpu_arch)) == row["sha256"]
        bins.append(
            {"binName": row["binName"], "sha256": row["sha256"], "version": row["version"],
             "reportedAt": row["reportedAt"], "latest": latest}
        )  # fmt: skip
    explain(detail["progress"])
    timeline: list[TimelineItem] = [
        {"at": row["reportedAt"], "kind": row["event"], "bin": row["binName"],
         "sha256": row["targetHash"], "seconds": row["processingTime"],
         "because": row["because"], "ago": ago(_parse(row["reportedAt"]), now)}
        for row in detail["progress"]
    ] + [
        {"at": row["reportedAt"], "kind": "reported", "bin": row["binName"],
         "sha256": row["sha256"], "seconds": None, "because": None,
         "ago": ago(_parse(row["reportedAt"]), now)}
        for row in detail["reports"]
    ]  # fmt: skip
    timeline.sort(key=lambda item: item["at"] or "", reverse=True)
    shown = _node_row(node, now)
    return {
        "node": {**shown, "adminLabels": detail["adminLabels"]},
        "bins": bins,
        "timeline": timeline,
    }


def release_page(
    session: Session, bin_: Bin, release: Release, now: datetime, where: Cursor
) -> ReleasePage:
    """One release: is it the latest, who runs it (one page of them), how often it failed."""
    page = db.release_runners(session, bin_, release.sha256, where)
    nodes: list[ReleaseNodeRow] = [
        {**_node_row(node, now), "reportedAt": ago(nb.reported_at, now)} for node, nb in page.rows
    ]
    return {
        "bin": bin_.name,
        "paused": bin_.paused,
        "arch": release.arch,
        "sha256": release.sha256,
        "size": release.size,
        "published": listings.iso(release.published_at),
        "publishedAgo": ago(release.published_at, now),
        "latest": latest_by_arch(session, bin_).get(release.arch) == release.sha256,
        "nodes": nodes,
        "pager": pager(page, where),
        "failures": db.release_failures(session, bin_, release.sha256),
    }


def activity(session: Session, now: datetime) -> list[ActivityItem]:
    """Publishes, pins, pauses, resumes, rollout steps (with their detail), and the fleet's
    upgrades and rollbacks, newest first; each with who made it (the person or token an
    operator's change names, the server for its own rollout steps, a node's agent)."""
    happened: list[tuple[datetime, ActivityItem]] = [
        (event.at, _item(event.at, event.kind, event.bin_name, event.arch, event.sha256, None,
                         event.detail, now, event.actor or SERVER_STEP))
        for event in db.recent_events(session, ACTIVITY_LIMIT)
    ]  # fmt: skip
    outcomes = db.outcomes(session, ACTIVITY_LIMIT)
    reports = [
        {"nodeName": one.node_name, "binName": one.bin_name, "targetHash": one.target_hash,
         "status": one.status, "reason": one.reason, "cause": one.cause}
        for one in outcomes
    ]  # fmt: skip
    explain(reports)
    for one, report in zip(outcomes, reports, strict=True):
        kind = (
            "upgrade"
            if report["event"] == "success"
            else NOT_THE_RELEASE.get(str(one.cause), "rollback")
        )
        item = _item(one.at, kind, one.bin_name, None, one.target_hash, one.node_name,
                     report["because"], now, "agent")  # fmt: skip
        happened.append((one.at, item))
    happened.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in happened[:ACTIVITY_LIMIT]]


def _item(
    at: datetime,
    kind: str,
    bin_name: str | None,
    arch: str | None,
    sha256: str | None,
    node: str | None,
    because: str | None,
    now: datetime,
    who: str,
) -> ActivityItem:
    return {"at": listings.iso(at), "kind": kind, "bin": bin_name, "arch": arch,
            "sha256": sha256, "node": node, "because": because,
            "tone": TONES.get(kind, "ok"), "ago": ago(at, now), "who": who}  # fmt: skip
