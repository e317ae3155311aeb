"""Withdrawn releases: those of a bin and arch published after its latest one.

Derived, never stored. Publishing makes the new release the latest, so nothing is newer;
a pin (a fleet-wide rollback) makes an earlier release the latest again, and every
release published after it is withdrawn — pinned away from — until a publish moves the
latest past them. Agents are told, so that they never keep or roll back to one.
Published order is release id order (ids only grow; publish times may tie).

Both functions count from the latest sha256 the caller read with its pointer, not from
the latest pointer as it is when they run: a pin committed between the two reads can
then never pair one latest with another one's withdrawn list.
"""

from __future__ import annotations

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, aliased

from ansible_proxy.protocol import MAX_WITHDRAWN
from ansible_proxy.server.db.models import Release


def withdrawn_of(session: Session, bin_id: int, arch: str, latest: str | None) -> tuple[str, ...]:
    """Releases of the bin for `arch` published after `latest`, newest first (bounded)."""
    if latest is None:
        return ()
    return withdrawn_by_bin(session, arch, {bin_id: latest}).get(bin_id, ())


def withdrawn_by_bin(
    session: Session, arch: str, latest: dict[int, str]
) -> dict[int, tuple[str, ...]]:
    """bin id → its withdrawn sha256s for `arch`, given bin id → latest sha256; one query.

    Newest first, at most MAX_WITHDRAWN per bin; bins with none are left out.
    """
    if not latest:
        return {}
    current = aliased(Release)
    rank = (
        func.row_number()
        .over(partition_by=Release.bin_id, order_by=Release.id.desc())
        .label("rank")
    )
    newer = (
        select(Release.bin_id, Release.sha256, rank)
        .join(
            current,
            (current.bin_id == Release.bin_id)
            & (current.arch == Release.arch)
            & (Release.id > current.id),
        )
        .where(
            Release.arch == arch,
            tuple_(current.bin_id, current.sha256).in_(list(latest.items())),
        )
        .subquery()
    )
    rows = session.execute(
        select(newer.c.bin_id, newer.c.sha256)
        .where(newer.c.rank <= MAX_WITHDRAWN)
        .order_by(newer.c.bin_id, newer.c.rank)
    )
    found: dict[int, list[str]] = {}
    for bin_id, sha in rows:
        found.setdefault(bin_id, []).append(sha)
    return {bin_id: tuple(shas) for bin_id, shas in found.items()}
