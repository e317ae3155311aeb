"""Dashboard sessions revoked by logout, in the database so that every replica refuses
a replayed cookie. Rows are keyed by a hash of the session's nonce and pruned once the
cookie would have expired anyway."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import RevokedSession


def _key(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def revoke(session: Session, nonce: str, expires_at: datetime, now: datetime) -> None:
    """Refuse the session with `nonce` from now on; forget revocations past their expiry."""
    session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))
    if session.get(RevokedSession, _key(nonce)) is None:
        session.add(RevokedSession(nonce_hash=_key(nonce), expires_at=expires_at))


def is_revoked(session: Session, nonce: str) -> bool:
    """True when the session with `nonce` was ended by a logout."""
    found = session.scalar(
        select(RevokedSession.nonce_hash).where(RevokedSession.nonce_hash == _key(nonce))
    )
    return found is not None
