"""The persistent queue: events added as rows in the caller's transaction, pruned once sent.

Decision: `text` follows Slack's rules (also read by Mattermost's Slack-compatible hooks):
`&`, `<` and `>` are escaped, so a node's `<!channel>` or `<https://x|a link>` in a reason
shows as typed and pings or links nothing; a word joiner after `@` and inside `](` does
the same for Mattermost's mentions and Markdown links. Receivers are not typed: each gets
this one body, and `data` holds every value as it came (`reason` included) for programs.

Decision: `enqueue` does not commit. The caller commits the rows with the change they
report, so a committed change always has its events queued and a rolled-back one never
sends any; the sender thread picks them up from the database, never from memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import WebhookDelivery
from ansible_proxy.server.webhooks.targets import WebhookTarget

MAX_EVENT = 32  # webhook_deliveries.event
_JOINER = "\u2060"  # WORD JOINER: shown as nothing, but no mention or link is parsed across it
_MENTION = re.compile(r"@(?=\w)")


def enqueue(
    session: Session,
    targets: Sequence[WebhookTarget],
    event: str,
    text: str,
    data: Mapping[str, Any],
    now: datetime,
) -> None:
    """Queue `event` for every target (not committed: the caller's transaction holds it).

    `text` is the one line chat receivers (Slack, Mattermost) show, escaped here; `data`
    must be JSON and is sent as it is.
    """
    if not event or len(event) > MAX_EVENT:
        raise ValueError(f"event name must be 1 to {MAX_EVENT} characters: {event!r}")
    stored = _naive_utc(now)
    body = json.dumps(
        {
            "event": event,
            "text": chat_text(text),
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


def chat_text(text: str) -> str:
    """`text` as one line of Slack-style text: no markup (mentions, links) but as typed."""
    line = " ".join(text.split())  # one line, whatever a name held
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Mattermost also reads Markdown and @mentions: an invisible word joiner breaks them.
    return _MENTION.sub("@" + _JOINER, line.replace("](", "]" + _JOINER + "("))


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
