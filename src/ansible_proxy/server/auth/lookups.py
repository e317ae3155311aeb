"""API tokens and people as the checks need them, cached in memory for `ttl` seconds
(5 s), so that a burst of admin calls costs one database read per token.

A change in this process (a revoke, a disable, a role) forgets the cache at once; one in
another process (--workers, replicas) is seen within `ttl`. Expiry is checked on every use
against the wall clock, not cached. Only the admin routes and the dashboard ask: the
agents' per-tick calls (server/hotpath) never reach this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.auth.actors import Actor, ActorKind
from ansible_proxy.server.auth.rights import Grant, Role
from ansible_proxy.server.db import people
from ansible_proxy.server.db.credentials import fingerprint

R = TypeVar("R")
DEFAULT_TTL = 5.0
TOUCH_SECONDS = 60.0  # a token's last use is written at most once a minute
_MAX_ENTRIES = 10_000  # beyond it the cache starts over (a flood of unknown tokens)


def grant_of(role: str, bins: str | None) -> Grant:
    return Grant(Role(role), tuple(bins.split(",")) if bins else None)


@dataclass(frozen=True)
class TokenRow:
    name: str
    hashed: str
    grant: Grant
    expires_at: datetime | None
    revoked: bool

    def actor(self, now: datetime) -> tuple[Actor | None, str]:
        """The token's actor, or None and why it is refused (401)."""
        if self.revoked:
            return None, f"the token {self.name!r} was revoked: ask an admin for a new one"
        if self.expires_at is not None and self.expires_at <= now:
            when = self.expires_at.isoformat() + "Z"
            return None, (
                f"the token {self.name!r} expired at {when}: ask an admin for a new one "
                "(bin-manager tokens create)"
            )
        return Actor(ActorKind.TOKEN, self.name, self.grant, fingerprint(self.hashed)), ""


@dataclass(frozen=True)
class UserRow:
    name: str
    grant: Grant
    disabled: bool
    epoch: int
    must_change: bool

    def actor(self) -> Actor:
        return Actor(ActorKind.USER, self.name, self.grant)


class TeamCache:
    """Token and person rows by token hash and by name, each for `ttl` seconds."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self.clock = clock
        self._tokens: dict[str, tuple[TokenRow | None, float]] = {}
        self._users: dict[str, tuple[UserRow | None, float]] = {}
        self._touched: dict[str, float] = {}

    def cached_token(self, hashed: str) -> tuple[bool, TokenRow | None]:
        """(known, row) from memory only; (False, None) asks for `token()`."""
        found = self._tokens.get(hashed)
        if found is None or self.clock() >= found[1]:
            return False, None
        return True, found[0]

    def token(self, hashed: str) -> TokenRow | None:
        """The token hashing to `hashed` (None: no such token); reads the database on a
        miss (call it in a worker thread)."""
        known, row = self.cached_token(hashed)
        if known:
            return row
        with self.sessions() as session:
            found = people.token_by_hash(session, hashed)
            row = None
            if found is not None:
                row = TokenRow(
                    found.name,
                    found.token_hash,
                    grant_of(found.role, found.bins),
                    found.expires_at,
                    found.revoked_at is not None,
                )
        self._keep(self._tokens, hashed, row)
        return row

    def cached_user(self, name: str) -> tuple[bool, UserRow | None]:
        """(known, row) from memory only; (False, None) asks for `user()`."""
        found = self._users.get(name)
        if found is None or self.clock() >= found[1]:
            return False, None
        return True, found[0]

    def user(self, name: str) -> UserRow | None:
        """The person named `name` (None: none); reads the database on a miss."""
        known, cached = self.cached_user(name)
        if known:
            return cached
        with self.sessions() as session:
            user = people.find_user(session, name)
            row = None
            if user is not None:
                row = UserRow(
                    user.name,
                    grant_of(user.role, user.bins),
                    user.disabled_at is not None,
                    user.session_epoch,
                    user.must_change,
                )
        self._keep(self._users, name, row)
        return row

    def touch_due(self, name: str) -> bool:
        """True (and noted) when the token's last use should be written now."""
        moment = self.clock()
        last = self._touched.get(name)
        if last is not None and moment - last < TOUCH_SECONDS:
            return False
        if len(self._touched) >= _MAX_ENTRIES:
            self._touched.clear()
        self._touched[name] = moment
        return True

    def touch(self, name: str, now: datetime) -> None:
        """Write the token's last use (a worker thread)."""
        with self.sessions() as session:
            people.touch_token(session, name, now)
            session.commit()

    def forget(self) -> None:
        """After a change to a person or a token in this process."""
        self._tokens.clear()
        self._users.clear()

    def _keep(self, cache: dict[str, tuple[R | None, float]], key: str, row: R | None) -> None:
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        cache[key] = (row, self.clock() + self.ttl)
