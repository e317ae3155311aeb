"""The persistent queue: events added as rows in the caller's transaction, pruned once sent.

Decision: `enqueue` does not commit. The caller commits the rows with the change they
report, so a committed change always has its events queued and a rolled-back one never
sends any; the sender thread picks them up from the database, never from memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import WebhookDelivery
from ansible_proxy.server.webhooks.targets import WebhookTarget

MAX_EVENT = 32  # webhook_deliveries.event


def enqueue(
    session: Session,
    targets: Sequence[WebhookTarget],
    event: str,
    text: str,
    data: Mapping[str, Any],
    now: datetime,
) -> None:
    """Queue `event` for every target (not committed: the caller's transaction holds it).

    `text` is the one line chat receivers (Slack, Mattermost) show; `data` must be JSON.
    """
    if not event or len(event) > MAX_EVENT:
        raise ValueError(f"event name must be 1 to {MAX_EVENT} characters: {event!r}")
    stored = _naive_utc(now)
    body = json.dumps(
        {
            "event": event,
            "text": " ".join(text.split()),  # one line, whatever a name held
            "at": stored.isoformat(timespec="seconds") + "Z",
            "data": dict(data),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    for target in targets:
        session.add(
            WebhookDelivery(
                url=target.url,
                event=event,
                body=body,
                created_at=stored,
                next_attempt_at=stored,
                attempts=0,
            )
        )


def prune_delivered(session: Session, before: datetime) -> int:
    """Delete rows delivered before `before` (not committed); how many were deleted."""
    result = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.delivered_at.is_not(None),
            WebhookDelivery.delivered_at < _naive_utc(before),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _naive_utc(moment: datetime) -> datetime:
    """The database's form of a time: naive UTC (an aware time is converted first)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
