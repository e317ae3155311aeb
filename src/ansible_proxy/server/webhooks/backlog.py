"""One receiver's undelivered rows and recent deliveries, as folding.py plans with them.

Read once a round and kept current in memory as the sender merges and sends, so that a
long queue is read and parsed once, not once per delivery.

Decision: a merge deletes each merged row only as it was read (same body, never tried,
not leased) and updates the kept row the same way, in one transaction. When another
process merged into, claimed or sent one of them first, nothing changes: the count of
every event stays exact, and the next round reads the queue again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import WebhookDelivery
from ansible_proxy.server.webhooks.folding import (
    Merge,
    Plan,
    Queued,
    Rules,
    Sent,
    folded_of,
    merged,
    plan,
    subject_of,
)

_ROW = WebhookDelivery
SCAN = 1000  # undelivered rows read a round: a waiting group shrinks to one row


@dataclass
class _Row:
    text: str  # the stored body as read: merges are guarded on it
    body: Any
    attempts: int
    due_at: datetime
    lease_until: datetime | None

    def queued(self, row_id: int, now: datetime) -> Queued:
        return Queued(
            id=row_id,
            subject=subject_of(self.body),
            folded=folded_of(self.body),
            due=self.due_at <= now,
            leased=self.lease_until is not None and self.lease_until >= now,
            attempts=self.attempts,
        )


class Backlog:
    """The first SCAN undelivered rows of one URL, in id order, and what it was sent lately."""

    def __init__(self, rows: dict[int, _Row], sent: list[Sent]) -> None:
        self._rows = rows
        self._sent = sent

    @classmethod
    def read(cls, session: Session, url: str, now: datetime, rules: Rules) -> Backlog:
        """The backlog of `url` now (reads only; the caller's session is left clean)."""
        horizon = now - timedelta(seconds=max(rules.repeat_seconds, rules.period_seconds))
        waiting = session.execute(
            select(_ROW.id, _ROW.body, _ROW.attempts, _ROW.next_attempt_at, _ROW.lease_until)
            .where(_ROW.url == url, _ROW.delivered_at.is_(None))
            .order_by(_ROW.id)
            .limit(SCAN)
        ).all()
        recent = session.execute(
            select(_ROW.body, _ROW.delivered_at).where(
                _ROW.url == url, _ROW.delivered_at >= horizon
            )
        ).all()
        session.rollback()  # a write (a merge, a claim) starts a transaction of its own
        rows = {
            row.id: _Row(
                row.body, parsed(row.body), row.attempts, row.next_attempt_at, row.lease_until
            )
            for row in waiting
        }
        return cls(rows, [Sent(subject_of(parsed(row.body)), row.delivered_at) for row in recent])

    def plan(self, now: datetime, rules: Rules) -> Plan:
        queued = [row.queued(row_id, now) for row_id, row in self._rows.items()]
        return plan(queued, self._sent, now, rules)

    def merge(self, session: Session, merge: Merge, now: datetime) -> bool:
        """Make `merge` in the database (committed) and here; False when nothing changed."""
        into = self._rows[merge.into]
        body = merged(into.body, [self._rows[row].body for row in merge.rows], merge.scope)
        text = dumped(body)
        for row in merge.rows:
            gone = session.execute(
                delete(_ROW).where(_ROW.id == row, _ROW.body == self._rows[row].text, _free(now))
            )
            if getattr(gone, "rowcount", 0) != 1:
                session.rollback()
                return False
        kept = session.execute(
            update(_ROW)
            .where(_ROW.id == merge.into, _ROW.body == into.text, _free(now))
            .values(body=text)
        )
        if getattr(kept, "rowcount", 0) != 1:
            session.rollback()
            return False
        session.commit()
        for row in merge.rows:
            del self._rows[row]
        into.text, into.body = text, body
        return True

    def delivered(self, row_id: int, now: datetime) -> None:
        """Row `row_id` went out at `now`: it counts against the windows from now on."""
        row = self._rows.pop(row_id, None)
        if row is not None:
            self._sent.append(Sent(subject_of(row.body), now))


def parsed(body: str) -> Any:
    """A stored body as JSON ({} for one queue.py did not write: sent as is, never folded)."""
    try:
        return json.loads(body)
    except ValueError:
        return {}


def dumped(body: Any) -> str:
    """A body as queue.py stores it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _free(now: datetime) -> ColumnElement[bool]:
    """Undelivered, never tried, and not leased: a row folding.py may merge."""
    return and_(
        _ROW.delivered_at.is_(None),
        _ROW.attempts == 0,
        or_(_ROW.lease_until.is_(None), _ROW.lease_until < now),
    )
