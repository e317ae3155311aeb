"""The signatures of releases (issue 18): what is stored, the per-bin sequence, and what
the agent's GET …/signature, the admin's …/signing and the dashboard read.

None of these commits (services/signatures.py does). A per-bin sequence only grows. A row
with a sequence above MAX_SEQUENCE (stored by a server before that limit) is ignored by
every read here, so that it can neither end a bin's signing nor be served.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import Bin, Release, Signature
from ansible_proxy.signatures import MAX_SEQUENCE

_VALID = Signature.sequence <= MAX_SEQUENCE


def statement_hash(statement: str) -> str:
    return hashlib.sha256(statement.encode()).hexdigest()


def lock_bin(session: Session, bin_id: int) -> None:
    """Hold the bin's row until the commit, so that two new statements for one bin checked
    at once cannot both pass with one sequence: an UPDATE that changes nothing takes the
    row lock on PostgreSQL and the write lock on SQLite (whose SELECT … FOR UPDATE is a
    plain read), and the other check waits for the commit, then sees its sequence."""
    session.execute(
        update(Bin)
        .where(Bin.id == bin_id)
        .values(id=Bin.id)
        .execution_options(synchronize_session=False)
    )


def max_sequence(session: Session, bin_id: int) -> int:
    """The highest sequence stored for any release (any arch) of the bin; 0 when none."""
    found = session.scalar(
        select(func.max(Signature.sequence)).where(Signature.bin_id == bin_id, _VALID)
    )
    return int(found or 0)


def _find_signature(
    session: Session, release_id: int, statement: str, fingerprint: str
) -> Signature | None:
    return session.scalars(
        select(Signature).where(
            Signature.release_id == release_id,
            Signature.statement_sha256 == statement_hash(statement),
            Signature.key_fingerprint == fingerprint,
        )
    ).first()


@dataclass(frozen=True)
class NewSignature:
    """A checked signature to store: the statement's text and what it says, and its key."""

    statement: str
    kind: str
    sequence: int
    fingerprint: str
    signature: str


def add_signature(session: Session, release: Release, new: NewSignature, now: datetime) -> bool:
    """Store `new` for `release`; False when the same key already signed that statement."""
    if _find_signature(session, release.id, new.statement, new.fingerprint) is not None:
        return False
    session.add(
        Signature(
            release_id=release.id,
            bin_id=release.bin_id,
            statement=new.statement,
            statement_sha256=statement_hash(new.statement),
            kind=new.kind,
            sequence=new.sequence,
            key_fingerprint=new.fingerprint,
            signature=new.signature,
            created_at=now,
        )
    )
    session.flush()
    return True


def count_signatures(session: Session, release_id: int, statement: str) -> int:
    """How many keys signed exactly this statement of the release."""
    found = session.scalar(
        select(func.count()).where(
            Signature.release_id == release_id,
            Signature.statement_sha256 == statement_hash(statement),
        )
    )
    return int(found or 0)


def newest_statement(session: Session, release_id: int) -> list[Signature]:
    """Every signature of the release's highest-sequence statement (empty: unsigned)."""
    rows = session.scalars(
        select(Signature)
        .where(Signature.release_id == release_id, _VALID)
        .order_by(Signature.sequence.desc(), Signature.id)
    ).all()
    if not rows:
        return []
    wanted = rows[0].statement_sha256
    return [row for row in rows if row.statement_sha256 == wanted]


@dataclass(frozen=True)
class StoredStatement:
    """One statement of a release, its signatures and their keys (oldest first)."""

    statement: str
    sequence: int
    signatures: tuple[str, ...]
    fingerprints: tuple[str, ...]


def statements_of(session: Session, release_id: int) -> list[StoredStatement]:
    """Every statement of the release with its signatures, highest sequence first."""
    rows = session.execute(
        select(
            Signature.statement_sha256,
            Signature.statement,
            Signature.sequence,
            Signature.signature,
            Signature.key_fingerprint,
        )
        .where(Signature.release_id == release_id, _VALID)
        .order_by(Signature.sequence.desc(), Signature.id)
    ).all()
    grouped: dict[str, list[tuple[str, int, str, str]]] = {}
    for digest, statement, sequence, signature, fingerprint in rows:
        grouped.setdefault(digest, []).append((statement, sequence, signature, fingerprint))
    return [
        StoredStatement(
            group[0][0], group[0][1], tuple(g[2] for g in group), tuple(g[3] for g in group)
        )
        for group in grouped.values()
    ]


def all_signers(session: Session, release_id: int) -> list[Signature]:
    """Every signature of the release, oldest first."""
    return list(
        session.scalars(
            select(Signature).where(Signature.release_id == release_id).order_by(Signature.id)
        )
    )


@dataclass(frozen=True)
class Signed:
    """What the dashboard shows of a release's newest statement: its sequence and keys."""

    sequence: int
    kind: str
    fingerprints: tuple[str, ...]


def signed_by_release(session: Session, bin_id: int) -> dict[tuple[str, str], Signed]:
    """For each signed release of the bin, by (arch, sha256), its newest statement's
    sequence and signers: one query for the whole bin."""
    rows = session.execute(
        select(
            Release.arch,
            Release.sha256,
            Signature.sequence,
            Signature.statement_sha256,
            Signature.kind,
            Signature.key_fingerprint,
        )
        .join(Release, Release.id == Signature.release_id)
        .where(Release.bin_id == bin_id, _VALID)
        .order_by(Signature.release_id, Signature.sequence.desc(), Signature.id)
    ).all()
    newest: dict[tuple[str, str], tuple[int, str, str]] = {}
    keys: dict[tuple[str, str], list[str]] = defaultdict(list)
    for arch, sha256, sequence, digest, kind, fingerprint in rows:
        first = newest.setdefault((arch, sha256), (sequence, digest, kind))
        if first[1] == digest:
            keys[(arch, sha256)].append(fingerprint)
    return {
        release: Signed(sequence, kind, tuple(keys[release]))
        for release, (sequence, _, kind) in newest.items()
    }
