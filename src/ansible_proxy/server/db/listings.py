"""Read-only views for the admin API and metrics, as JSON-ready dicts (camelCase keys)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ansible_proxy.names import format_labels
from ansible_proxy.server.db.labels import admin_labels
from ansible_proxy.server.db.models import (
    Bin,
    BinReportRow,
    Event,
    Latest,
    Node,
    NodeBin,
    ProgressRow,
    Release,
    Rollout,
)
from ansible_proxy.server.db.pages import Cursor, Page, by_node_name

HISTORY_LIMIT = 200


def iso(moment: datetime | None) -> str | None:
    """Naive UTC from the database as ISO 8601 with a Z."""
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def latest_by_arch(session: Session, bin_: Bin) -> dict[str, str]:
    """Arch → the sha256 of the bin's latest release for it, by arch."""
    rows = session.execute(
        select(Latest.arch, Release.sha256)
        .join(Release, Release.id == Latest.release_id)
        .where(Latest.bin_id == bin_.id)
        .order_by(Latest.arch)
    )
    return {arch: sha for arch, sha in rows}


def bins(session: Session) -> list[dict[str, Any]]:
    result = []
    for bin_ in session.scalars(select(Bin).order_by(Bin.name)):
        releases = session.scalar(select(func.count()).where(Release.bin_id == bin_.id))
        nodes = session.scalar(select(func.count()).where(NodeBin.bin_id == bin_.id))
        result.append(
            {
                "binName": bin_.name,
                "paused": bin_.paused,
                "latest": latest_by_arch(session, bin_),
                "releases": releases,
                "nodes": nodes,
                "createdAt": iso(bin_.created_at),
            }
        )
    return result


def releases(session: Session, bin_: Bin) -> list[dict[str, Any]]:
    latest = latest_by_arch(session, bin_)
    rows = session.scalars(
        select(Release).where(Release.bin_id == bin_.id).order_by(Release.id.desc())
    )
    return [
        {
            "binName": bin_.name,
            "arch": release.arch,
            "sha256": release.sha256,
            "size": release.size,
            "publishedAt": iso(release.published_at),
            "latest": latest.get(release.arch) == release.sha256,
        }
        for release in rows
    ]


def bin_nodes(session: Session, bin_: Bin, where: Cursor) -> Page:
    """Who runs what of this bin, from each node's last report: one page by node name."""
    query = select(Node, NodeBin).join(NodeBin, NodeBin.node_id == Node.id)
    page = by_node_name(session, query.where(NodeBin.bin_id == bin_.id), where)
    rows = [
        {
            "nodeName": node.name,
            "cpuArch": node.cpu_arch,
            "sha256": report.sha256,
            "version": report.version,
            "reportedAt": iso(report.reported_at),
        }
        for node, report in page.rows
    ]
    return replace(page, rows=rows)


def _progress_rows(session: Session, where: Any) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ProgressRow, Node.name, Bin.name)
        .join(Node, Node.id == ProgressRow.node_id)
        .join(Bin, Bin.id == ProgressRow.bin_id)
        .where(where)
        .order_by(ProgressRow.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return [
        {
            "nodeName": node_name,
            "binName": bin_name,
            "targetHash": row.target_hash,
            "processingTime": row.processing_time,
            "status": row.status,
            "reportedAt": iso(row.reported_at),
            "reason": row.reason,
            "cause": row.cause,
        }
        for row, node_name, bin_name in rows
    ]


def bin_progress(session: Session, bin_: Bin) -> list[dict[str, Any]]:
    return _progress_rows(session, ProgressRow.bin_id == bin_.id)


def _node_summary(node: Node) -> dict[str, Any]:
    return {
        "nodeName": node.name,
        "cpuArch": node.cpu_arch,
        "osRelease": node.os_release,
        "binProxyVersion": node.agent_version,
        "labels": node.labels or "",
        "firstSeen": iso(node.first_seen),
        "lastSeen": iso(node.last_seen),
    }


def nodes(session: Session, where: Cursor) -> Page:
    """One page of nodes by name."""
    page = by_node_name(session, select(Node), where)
    return replace(page, rows=[_node_summary(node) for (node,) in page.rows])


def node_detail(session: Session, node: Node) -> dict[str, Any]:
    """A node's info, what it runs now, and its report and progress history."""
    current = session.execute(
        select(Bin.name, NodeBin)
        .join(Bin, Bin.id == NodeBin.bin_id)
        .where(NodeBin.node_id == node.id)
        .order_by(Bin.name)
    )
    reports = session.execute(
        select(Bin.name, BinReportRow)
        .join(Bin, Bin.id == BinReportRow.bin_id)
        .where(BinReportRow.node_id == node.id)
        .order_by(BinReportRow.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return {
        **_node_summary(node),
        "adminLabels": format_labels(admin_labels(session, node.name)),  # `nodes label`
        "bins": [
            {
                "binName": name,
                "sha256": row.sha256,
                "version": row.version,
                "reportedAt": iso(row.reported_at),
            }
            for name, row in current
        ],
        "reports": [
            {
                "binName": name,
                "sha256": row.sha256,
                "version": row.version,
                "reportedAt": iso(row.reported_at),
            }
            for name, row in reports
        ],
        "progress": _progress_rows(session, ProgressRow.node_id == node.id),
    }


def events(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Event).order_by(Event.id.desc()).limit(HISTORY_LIMIT))
    return [
        {
            "at": iso(event.at),
            "kind": event.kind,
            "binName": event.bin_name,
            "arch": event.arch,
            "sha256": event.sha256,
            "detail": event.detail,
        }
        for event in rows
    ]


def node_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Node)) or 0


def nodes_per_bin_sha(session: Session) -> list[tuple[str, str, int]]:
    """(bin, sha256, how many nodes last reported running it)."""
    rows = session.execute(
        select(Bin.name, NodeBin.sha256, func.count())
        .join(Bin, Bin.id == NodeBin.bin_id)
        .group_by(Bin.name, NodeBin.sha256)
        .order_by(Bin.name, NodeBin.sha256)
    )
    return [(name, sha, count) for name, sha, count in rows]


def newest_rollouts(session: Session) -> list[tuple[str, str, str, int, int, bool]]:
    """(bin, arch, state, wave, wave count, reverted) of the newest staged rollout of each
    bin and arch."""
    newest = (
        select(func.max(Rollout.id).label("id")).group_by(Rollout.bin_id, Rollout.arch).subquery()
    )
    rows = session.execute(
        select(
            Bin.name,
            Rollout.arch,
            Rollout.state,
            Rollout.wave,
            Rollout.wave_count,
            Rollout.reverted,
        )
        .join(Bin, Bin.id == Rollout.bin_id)
        .where(Rollout.id.in_(select(newest.c.id)))
        .order_by(Bin.name, Rollout.arch)
    ).all()
    return [(row[0], row[1], row[2], row[3], row[4], bool(row[5])) for row in rows]


def rollout_step_counts(session: Session) -> list[tuple[str, int]]:
    """How many of each rollout step the activity log holds (kinds `rollout-…`)."""
    rows = session.execute(
        select(Event.kind, func.count())
        .where(Event.kind.like("rollout-%"))
        .group_by(Event.kind)
        .order_by(Event.kind)
    ).all()
    return [(row[0], int(row[1])) for row in rows]
