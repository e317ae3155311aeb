"""Credential changes made by other processes, dropped from this one's cache every second.

Node and proxy credentials are cached for minutes (auth/credentials.py); a revoke, an
approve or an enrolment through another worker or replica must still count here at
once. Every `interval` seconds this asks the database which node credentials changed
(`changed_at`, indexed) and which proxies were revoked in the last `NEAR` seconds, every
`WIDE_EVERY`th time in the last `MARGIN` seconds, and drops the cached answers of those
whose row differs from what it saw before and from what the cache holds (a node this
process enrolled and has answered since keeps its answers). The margins cover a change
committed a while after its `changed_at` was taken (a write waiting its turn) and
replicas' clocks that differ by less than that. Re-reading a whole minute every second
cost 4 % of a core for a minute after 3,000 enrolments.

Every answer is also checked again when it reaches the cache's max age (10 minutes):
the wide look reads the rows of the names about to expire, 500 to a query, and keeps
the answers that still agree (`renew`). That bounds anything the margins miss, and
costs a fleet at a one-minute tick a few queries a minute instead of one lookup through
the route every ten keepalives.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.auth.credentials import Credentials
from ansible_proxy.server.db.engine import error_name, stored_now
from ansible_proxy.server.db.models import NodeCredential, Proxy
from ansible_proxy.server.outages import FaultNote, unnoted
from ansible_proxy.server.periodic import Periodic

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 1.0
NEAR = timedelta(seconds=5)
MARGIN = timedelta(seconds=60)
WIDE_EVERY = 15
RENEW_AHEAD = 60.0  # seconds before an answer's end the wide look reads its row again
_CHUNK = 500  # names in one renewal query
_MANY = 10_000  # changed names in one look: dropping the whole cache is cheaper

_Row = tuple[bool, str | None, str | None]  # revoked, token hash, proxy: what decides


class CredentialWatch(Periodic):
    """Drops from `credentials` what other processes changed; `check()` once per interval."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        credentials: Credentials,
        interval: float = DEFAULT_INTERVAL,
        on_fault: FaultNote = unnoted,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.credentials = credentials
        self.interval = interval
        self.on_fault = on_fault
        self._seen: dict[str, tuple[datetime, _Row]] = {}  # inside the margin
        self._revoked_proxies: set[str] = set()
        self._looks = 0

    async def check(self, wide: bool = True) -> int:
        """One look at the last MARGIN (`wide`) or NEAR seconds; the number of names and
        proxies whose cached answers were dropped."""
        now = stored_now()
        since = now - (MARGIN if wide else NEAR)

        def work() -> tuple[list[tuple[str, datetime, _Row]], list[str]]:
            with self.sessions() as session:
                rows = session.execute(
                    select(
                        NodeCredential.node_name,
                        NodeCredential.changed_at,
                        NodeCredential.revoked,
                        NodeCredential.token_hash,
                        NodeCredential.proxy_name,
                    ).where(NodeCredential.changed_at >= since)
                ).all()
                proxies = session.scalars(select(Proxy.name).where(Proxy.revoked_at >= since)).all()
            return [(r[0], r[1], (bool(r[2]), r[3], r[4])) for r in rows], list(proxies)

        rows, proxies = await anyio.to_thread.run_sync(work)
        changed = []
        for name, at, row in rows:
            if self._seen.get(name, (None, None))[1] != row and self.credentials.disagrees(
                name, *row
            ):
                changed.append((name, row[1]))
            self._seen[name] = (at, row)
        revoked = [name for name in proxies if name not in self._revoked_proxies]
        self._revoked_proxies.update(revoked)
        if len(changed) > _MANY:
            self.credentials.forget()
        elif changed or revoked:
            self.credentials.forget_changed(changed, revoked)
        if wide:
            self._seen = {name: seen for name, seen in self._seen.items() if seen[0] >= since}
            return len(changed) + len(revoked) + await self.renew()
        return len(changed) + len(revoked)

    async def renew(self) -> int:
        """Read again the rows of the names whose answers end soon (and every proxy's);
        the number of names dropped because their row no longer agrees."""
        since, names = self.credentials.expiring(RENEW_AHEAD)

        def work() -> tuple[dict[str, _Row | None], dict[str, str]]:
            rows: dict[str, _Row | None] = dict.fromkeys(names)
            with self.sessions() as session:
                for start in range(0, len(names), _CHUNK):
                    chunk = names[start : start + _CHUNK]
                    for name, revoked, hashed, proxy in session.execute(
                        select(
                            NodeCredential.node_name,
                            NodeCredential.revoked,
                            NodeCredential.token_hash,
                            NodeCredential.proxy_name,
                        ).where(NodeCredential.node_name.in_(chunk))
                    ):
                        rows[name] = (bool(revoked), hashed, proxy)
                tokens = session.execute(
                    select(Proxy.name, Proxy.token_hash).where(Proxy.revoked_at.is_(None))
                ).all()
            return rows, {name: hashed for name, hashed in tokens}

        rows, tokens = await anyio.to_thread.run_sync(work)
        self.credentials.renew_proxies(tokens)
        return self.credentials.renew(since, rows)

    async def run(self) -> None:
        """Look every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self._looks += 1
            try:
                await self.check(wide=self._looks % WIDE_EVERY == 0)
            except SQLAlchemyError as exc:  # the database is away: it cannot change either
                if not self.on_fault(exc):
                    log.warning("checking credential changes failed (retried): %s", error_name(exc))
