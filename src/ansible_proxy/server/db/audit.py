"""The audit trail's rows: appended (audit/trail.py, and the dashboard's logins), read a
page at a time, newest first, by id. Nothing here changes or deletes a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.auth.actors import Actor
from ansible_proxy.server.db.team import AuditEntry

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def entry(
    actor: Actor | None,
    action: str,
    address: str,
    now: datetime,
    *,
    outcome: str = "ok",
    name: str | None = None,
    kind: str = "unknown",
    **target: str | None,
) -> AuditEntry:
    """A row to add: `actor` (None: `name` and `kind`, for a failed login), what and
    where. `target`: bin_name, target, arch, sha256, detail."""
    return AuditEntry(
        at=now,
        actor_kind=actor.kind.value if actor else kind,
        actor_name=(actor.name if actor else name or "")[:128],
        actor_fingerprint=actor.fingerprint if actor else None,
        action=action[:32],
        outcome=outcome,
        bin_name=target.get("bin_name"),
        target=(target.get("target") or None) and str(target["target"])[:255],
        arch=target.get("arch"),
        sha256=target.get("sha256"),
        address=address[:64],
        detail=(target.get("detail") or None) and str(target["detail"])[:300],
    )


def row(item: AuditEntry) -> dict[str, Any]:
    return {
        "id": item.id,
        "at": item.at.isoformat() + "Z",
        "actor": item.actor_name,
        "actorKind": item.actor_kind,
        "fingerprint": item.actor_fingerprint,
        "action": item.action,
        "outcome": item.outcome,
        "binName": item.bin_name,
        "target": item.target,
        "arch": item.arch,
        "sha256": item.sha256,
        "address": item.address,
        "detail": item.detail,
    }


def page(
    session: Session,
    *,
    limit: int = DEFAULT_LIMIT,
    before: int | None = None,
    actor: str | None = None,
    bin_name: str | None = None,
    action: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` entries older than id `before`, newest first, matching every filter
    given; and the `before` of the next page (None: this is the last)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    if actor:
        query = query.where(AuditEntry.actor_name == actor)
    if bin_name:
        query = query.where(AuditEntry.bin_name == bin_name)
    if action:
        query = query.where(AuditEntry.action == action)
    found = list(session.scalars(query))
    more = len(found) > limit
    found = found[:limit]
    return [row(item) for item in found], (found[-1].id if more and found else None)
