"""The webhook sender: a daemon thread that POSTs queued events and retries with backoff.

Owns httpx for the outgoing notifications. Each round, per receiver, it first merges the
node events that must wait (folding.py: repeats, and beyond the limits per node and per
bin) into one row per group, then claims the oldest row not waiting by an UPDATE guarded
on "due and not leased" (so that server processes sharing a database never both send
it), POSTs it, and marks it delivered or due again later. A receiver's rows go out in id
order: one not yet due holds back those after it; a waiting one holds back nothing.

Decision: delivery is at least once. A send that outlasts its lease (twice the timeout),
or a crash between the answer and the commit, sends that row again; receivers tell
repeats apart by the X-Bin-Manager-Delivery header.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy import __version__
from ansible_proxy.server.db.engine import error_name, stored_now
from ansible_proxy.server.db.models import WebhookDelivery
from ansible_proxy.server.outages import FaultNote, unnoted
from ansible_proxy.server.webhooks.backlog import Backlog, dumped, parsed
from ansible_proxy.server.webhooks.folding import Merge, Rules, summary
from ansible_proxy.server.webhooks.targets import WebhookTarget, redact

log = logging.getLogger(__name__)
USER_AGENT = f"bin-manager/{__version__}"
MAX_ERROR = 300  # webhook_deliveries.last_error
_PER_ROUND = 100  # rows per receiver and round, so that stop() is heard between them
_ROW = WebhookDelivery


@dataclass(frozen=True)
class _Claimed:
    id: int
    event: str
    body: str
    attempts: int


def backoff(attempts: int, max_backoff: float) -> float:
    """Seconds until the next try after `attempts` earlier failures: 1, 2, 4… up to the cap."""
    return float(min(max_backoff, 2 ** min(attempts, 32)))


def signature(secret: str, body: bytes) -> str:
    """The X-Bin-Manager-Signature value: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Delivers the queued rows of `targets`; `start()` runs rounds in a thread.

    Counters for /metrics: `delivered`, `failed_attempts`, `folded` (events merged into a
    summary) as totals; `queued` and `unconfigured` (undelivered rows for configured and
    no longer configured URLs) and `held` (events waiting for a window to pass).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        targets: tuple[WebhookTarget, ...],
        *,
        interval: float = 1.0,
        timeout: float = 5.0,
        max_backoff: float = 300.0,
        rules: Rules | None = None,
        clock: Callable[[], datetime] = stored_now,
        on_fault: FaultNote = unnoted,
    ) -> None:
        self.sessions = sessions
        self.targets = targets
        self.on_fault = on_fault
        self.interval = interval
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.rules = rules or Rules()
        self.clock = clock
        self.delivered = 0
        self.failed_attempts = 0
        self.folded = 0
        self.queued = 0
        self.unconfigured = 0
        self._held: dict[str, int] = {}  # per URL, as its last step found
        self._by_url = {target.url: target for target in targets}
        self._secrets = [target.secret for target in targets if target.secret]
        self._client: httpx.Client | None = None
        if targets:
            self._client = httpx.Client(
                timeout=timeout,
                verify=True,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            )
        self._stopping = threading.Event()
        self._round = threading.Lock()  # deliver_due() from a test while the thread runs
        self._thread: threading.Thread | None = None
        self._reported: set[str] = set()  # unconfigured URLs already logged

    @property
    def held(self) -> int:
        return sum(self._held.values())

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Deliver in a background daemon thread every `interval` seconds (none: no-op)."""
        if not self.targets or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (after the send in flight, if any) and close the HTTP client."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the webhook sender did not stop within %ss", timeout)
                return  # it still uses the client; the process exit ends both
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def deliver_due(self) -> int:
        """One round over every receiver; how many rows were delivered."""
        if self._client is None:
            return 0
        with self._round:
            delivered = 0
            try:
                waiting = self._waiting_urls()
                self._held = {url: self._held.get(url, 0) for url in waiting}
                for url in waiting:
                    if self._stopping.is_set():
                        break
                    delivered += self._drain(self._by_url[url])
            except SQLAlchemyError as exc:  # the database is away: the next round retries
                if not self.on_fault(exc):
                    log.warning("webhook round failed (retried): %s", error_name(exc))
            return delivered

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.deliver_due()
            except Exception:  # the thread must outlive any one bad round
                log.exception("webhook round failed (retried)")
            self._stopping.wait(self.interval)

    def _waiting_urls(self) -> list[str]:
        """Configured URLs with undelivered rows, in configuration order; updates gauges."""
        with self.sessions() as session:
            found = session.execute(
                select(_ROW.url, func.count()).where(_ROW.delivered_at.is_(None)).group_by(_ROW.url)
            )
            counts: dict[str, int] = {url: count for url, count in found}
        self.queued = sum(n for url, n in counts.items() if url in self._by_url)
        self.unconfigured = sum(n for url, n in counts.items() if url not in self._by_url)
        for url in sorted(set(counts) - set(self._by_url) - self._reported):
            self._reported.add(url)
            log.warning(
                "%d webhook deliveries to %s are kept: that URL is no longer configured",
                counts[url],
                redact(url),
            )
        return [url for url in self._by_url if url in counts]

    def _drain(self, target: WebhookTarget) -> int:
        """Send `target`'s rows in order until one fails, is not due, or is leased."""
        delivered = 0
        with self.sessions() as session:
            backlog = Backlog.read(session, target.url, self.clock(), self.rules)
        for _ in range(_PER_ROUND):
            if self._stopping.is_set():
                break
            now = self.clock()
            step = backlog.plan(now, self.rules)
            self._held[target.url] = step.held
            if not self._merge(backlog, step.merges, now) or step.head is None:
                break
            row = self._claim(step.head, now)
            if row is None:
                break
            error = self._send(target, row)
            now = self.clock()
            if error is None:
                self._mark_delivered(row, now)
                backlog.delivered(row.id, now)
                delivered += 1
                self.delivered += 1
                continue
            delay = backoff(row.attempts, self.max_backoff)
            self._mark_failed(row, now + timedelta(seconds=delay), error)
            self.failed_attempts += 1
            log.warning(
                "webhook %s (delivery %d) to %s failed, attempt %d, next in %gs: %s",
                row.event,
                row.id,
                redact(target.url),
                row.attempts + 1,
                delay,
                error,
            )
            break
        return delivered

    def _merge(self, backlog: Backlog, merges: tuple[Merge, ...], now: datetime) -> bool:
        """Make `merges`; False when another process changed a row first (the next round
        reads the queue again)."""
        for merge in merges:
            with self.sessions() as session:
                if not backlog.merge(session, merge, now):
                    return False
            self.folded += len(merge.rows)
        return True

    def _claim(self, row_id: int, now: datetime) -> _Claimed | None:
        """Lease row `row_id` when it is due and nobody holds it."""
        with self.sessions() as session:
            result = session.execute(
                update(_ROW)
                .where(_ROW.id == row_id, _claimable(now))
                .values(lease_until=now + timedelta(seconds=self.timeout * 2))
            )
            if not getattr(result, "rowcount", 0):
                session.rollback()
                return None  # not due yet, or another process holds it
            row = session.execute(
                select(_ROW.event, _ROW.body, _ROW.attempts).where(_ROW.id == row_id)
            ).one()
            session.commit()
        return _Claimed(id=row_id, event=row.event, body=row.body, attempts=row.attempts)

    def _send(self, target: WebhookTarget, row: _Claimed) -> str | None:
        """POST `row` to `target`; None when it answered 2xx, else one line saying why not."""
        assert self._client is not None
        body = _outgoing(row.body)
        headers = {
            "Content-Type": "application/json",
            "X-Bin-Manager-Event": row.event,
            "X-Bin-Manager-Delivery": str(row.id),
        }
        if target.secret:
            headers["X-Bin-Manager-Signature"] = signature(target.secret, body)
        try:
            # Streamed and closed unread: a receiver's answer body is never needed.
            with self._client.stream("POST", target.url, content=body, headers=headers) as answer:
                status, reason = answer.status_code, answer.reason_phrase
        except Exception as exc:  # refused, timed out, TLS, a URL httpx rejects: retried later
            lines = str(exc).strip().splitlines()
            return self._clean(f"{type(exc).__name__}: {lines[0]}" if lines else repr(exc))
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return self._clean(f"HTTP {status} {reason} (redirects are not followed)")
        return self._clean(f"HTTP {status} {reason}")

    def _mark_delivered(self, row: _Claimed, now: datetime) -> None:
        with self.sessions() as session:
            session.execute(
                update(_ROW)
                .where(_ROW.id == row.id)
                .values(delivered_at=now, lease_until=None, last_error=None)
            )
            session.commit()

    def _mark_failed(self, row: _Claimed, due: datetime, error: str) -> None:
        with self.sessions() as session:
            session.execute(
                update(_ROW)
                .where(_ROW.id == row.id, _ROW.delivered_at.is_(None))
                .values(
                    attempts=_ROW.attempts + 1,
                    next_attempt_at=due,
                    last_error=error,
                    lease_until=None,
                )
            )
            session.commit()

    def _clean(self, text: str) -> str:
        """`text` fit for last_error and the log: one short line, no secret in it."""
        text = " ".join(text.split())
        for secret in self._secrets:  # no httpx message holds one; this keeps it so
            text = text.replace(secret, "***")
        return text[:MAX_ERROR]


def _outgoing(stored: str) -> bytes:
    """The bytes to POST: the stored body, a summary's `text` ending with its count."""
    body = parsed(stored)
    ending = summary(body) if isinstance(body, dict) else ""
    if not ending or not isinstance(body.get("text"), str):
        return stored.encode()
    return dumped({**body, "text": body["text"] + ending}).encode()


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Undelivered, due, and not leased (or its lease ran out)."""
    return and_(
        _ROW.delivered_at.is_(None),
        _ROW.next_attempt_at <= now,
        or_(_ROW.lease_until.is_(None), _ROW.lease_until < now),
    )
