"""One audit entry for every change a request makes, written in the change's own
transaction: an entry is committed exactly when its change is, and no route can forget it.

The authorization of a request that may change something (auth/authorize.py, and the
dashboard's visitor for its forms) calls `begin()` with who, what (auth/routes.py's action)
and the target its path names. The session listeners installed by `watch()` then do the
rest, for any session of the app used by that request, in any worker thread (a context
variable: FastAPI and anyio copy it into the threads they run code in):

- a flush or an ORM UPDATE/DELETE/INSERT marks the session as changing something; a new
  `Event` row (the activity log) gets the actor's name, and lends its release (sha256,
  arch) to the entry when the path did not name one;
- before the session commits a change, the entry is added to the same transaction; after
  the commit the request's entry is done (a second commit adds no second entry).

A request that changes nothing (a refused input, a 404) leaves no entry; refusals by the
rights check and logins are recorded explicitly (`record()`). The agents' requests never
`begin()`, so their writes are not audited; the background rollout checker's steps are the
server's own (no actor).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from ansible_proxy.server.auth.actors import Actor
from ansible_proxy.server.db import audit
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.db.models import Event
from ansible_proxy.server.db.team import AuditEntry

_KEY = "audit_change"  # in Session.info: the change this session is part of
_ENTRY = "audit_entry"  # in Session.info: the entry added to its transaction


@dataclass
class Change:
    """The change one request is making, and how far its entry got."""

    actor: Actor
    action: str
    address: str
    bin_name: str | None = None
    target: str | None = None
    arch: str | None = None
    sha256: str | None = None
    detail: str | None = None
    done: bool = False

    def entry(self, now: datetime) -> AuditEntry:
        return audit.entry(
            self.actor,
            self.action,
            self.address,
            now,
            bin_name=self.bin_name,
            target=self.target,
            arch=self.arch,
            sha256=self.sha256,
            detail=self.detail,
        )


_current: ContextVar[Change | None] = ContextVar("audit_change", default=None)


def begin(change: Change) -> None:
    """The request being handled makes `change` (its authorization calls this)."""
    _current.set(change)


def current() -> Change | None:
    return _current.get()


def note(**fields: str | None) -> None:
    """Add what only the route knows to the request's entry (a name in the body)."""
    change = _current.get()
    if change is not None:
        for name, value in fields.items():
            setattr(change, name, value)


def record(sessions: sessionmaker[Session], entry: AuditEntry) -> None:
    """Append one entry in a transaction of its own: a refusal, a login (a worker thread)."""
    token = _current.set(None)  # this session is not the request's change
    try:
        with sessions() as session:
            session.add(entry)
            session.commit()
    finally:
        _current.reset(token)


def watch(sessions: sessionmaker[Session]) -> None:
    """Install the listeners on every session `sessions` makes."""
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "do_orm_execute", _on_execute)
    event.listen(sessions, "before_commit", _before_commit)
    event.listen(sessions, "after_commit", _after_end)
    event.listen(sessions, "after_soft_rollback", _after_rollback)


def _touched(session: Session) -> bool:
    """True when the session holds a change of its own (not only our entry)."""
    return any(
        not isinstance(item, AuditEntry)
        for item in (*session.new, *session.dirty, *session.deleted)
    )


def _live() -> Change | None:
    change = _current.get()
    return None if change is None or change.done else change


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    change = _live()
    if change is None or not _touched(session):
        return
    session.info[_KEY] = change
    for item in session.new:
        if isinstance(item, Event):
            item.actor = change.actor.label[:200]
            if change.sha256 is None and item.sha256 and item.bin_name in (change.bin_name, None):
                change.sha256, change.arch = item.sha256, item.arch or change.arch
    entry = session.info.get(_ENTRY)
    if isinstance(entry, AuditEntry) and entry in session.new:  # not inserted yet
        entry.sha256, entry.arch = change.sha256, change.arch


def _on_execute(state: ORMExecuteState) -> None:
    change = _live()
    if change is not None and (state.is_insert or state.is_update or state.is_delete):
        state.session.info[_KEY] = change


def _before_commit(session: Session) -> None:
    """Runs before the commit's own flush: pending changes count as well as flushed ones."""
    change = _live()
    if change is None or _ENTRY in session.info:
        return
    if session.info.get(_KEY) is change or _touched(session):
        session.info[_KEY] = change
        entry = change.entry(stored_now())
        session.info[_ENTRY] = entry
        session.add(entry)


def _after_end(session: Session) -> None:
    session.info.pop(_ENTRY, None)
    change = session.info.pop(_KEY, None)
    if isinstance(change, Change):
        change.done = True


def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_ENTRY, None)
    session.info.pop(_KEY, None)
