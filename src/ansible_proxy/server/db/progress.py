"""Recording a progress event (POST /bins/{bin}/progress), with the reason and cause an
agent gave."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ansible_proxy.protocol import FailureCause, ProgressReport, ProgressStatus
from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Bin, Node, ProgressRow


def add_progress(
    session: Session, bin_: Bin, node: Node, report: ProgressReport, now: datetime
) -> None:
    """One history row; an empty reason is stored as none, and a cause only with `failed`
    ("release" when none was sent). Refreshes the node's last seen."""
    failed = report.status == ProgressStatus.FAILED
    session.add(
        ProgressRow(
            node_id=node.id,
            bin_id=bin_.id,
            target_hash=report.targetHash,
            processing_time=report.processingTime,
            status=report.status.value,
            reported_at=now,
            reason=report.reason or None,
            cause=(report.cause or FailureCause.RELEASE).value if failed else None,
        )
    )
    queries.touch_node(node, now)
