"""Webhook notifications against a real HTTP receiver on 127.0.0.1 and a real SQLite
database: signed JSON POSTs, retries with backoff through an outage, the queue kept over a
sender restart, exactly one delivery with two senders, no secret in rows or logs, and
node events folded into summaries (by one sender, and by two at once)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy import __version__
from ansible_proxy.server.db.engine import make_engine, make_sessionmaker, migrate, stored_now
from ansible_proxy.server.db.models import WebhookDelivery
from ansible_proxy.server.webhooks.folding import Rules
from ansible_proxy.server.webhooks.queue import enqueue
from ansible_proxy.server.webhooks.sender import WebhookSender
from ansible_proxy.server.webhooks.targets import WebhookTarget, parse_targets
from tests.support.loopback import Exchange, Loopback, Seen
from tests.support.postgres import PostgresServer
from tests.support.procs import LOOPBACK, free_port, wait_until

SECRET = "hunter2-s3cr3t"
START = datetime(2026, 12, 12, 9, 0, 0)


class Receiver:
    """An HTTP server on 127.0.0.1 recording every request; `status` is what it answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.status = 200
        self.delay = 0.0
        self.server = Loopback(self.answer, port=port, keep_alive=False)

    def url(self, path: str = "/hook") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def received(self) -> list[Seen]:
        return self.server.received()

    def answer(self, req: Exchange) -> None:
        # A GET is what a followed redirect would send: it shows up as a request too.
        time.sleep(self.delay)
        req.reply(self.status, b"ok", Location=self.url("/elsewhere"))

    def start(self) -> Receiver:
        self.server.start()
        return self

    def stop(self) -> None:
        """Close the port (an outage); `start()` opens it again on the same port."""
        self.server.stop()


class Clock:
    """A settable clock in the database's form (naive UTC), for backoff without waiting."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; these tests talk to 127.0.0.1 only, directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite in the test's directory; a test parametrized with "postgres" gets PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'db.sqlite3'}"
        return
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    name = pg.create_database()
    yield pg.url(name)
    pg.drop_database(name)


@pytest.fixture
def engines(database: str) -> Iterator[Callable[[], sessionmaker[Session]]]:
    """Sessions on the one database, each call a new engine: as another server process."""
    made: list[Engine] = []

    def open_sessions() -> sessionmaker[Session]:
        engine = make_engine(database)
        migrate(engine)
        made.append(engine)
        return make_sessionmaker(engine)

    yield open_sessions
    for engine in made:
        engine.dispose()


@pytest.fixture
def sessions(engines: Callable[[], sessionmaker[Session]]) -> sessionmaker[Session]:
    return engines()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def senders() -> Iterator[Callable[..., WebhookSender]]:
    """Make senders that are all stopped (thread joined, client closed) at the end."""
    made: list[WebhookSender] = []

    def make(
        sessions: sessionmaker[Session], targets: tuple[WebhookTarget, ...], **options: Any
    ) -> WebhookSender:
        sender = WebhookSender(sessions, targets, **options)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.stop()


def _enqueue(
    sessions: sessionmaker[Session],
    targets: tuple[WebhookTarget, ...],
    event: str = "rollout.started",
    now: datetime = START,
    **data: object,
) -> None:
    with sessions() as session:
        enqueue(session, targets, event, f"Rollout of hello: {event}", data, now)
        session.commit()


def _rows(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_an_event_is_posted_once_as_signed_json(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(f"{receiver.url('/signed')}#secret={SECRET}, {receiver.url('/plain')}")
    clock = Clock()
    sender = senders(sessions, targets, clock=clock)
    _enqueue(sessions, targets, "wave.promoted", rollout=7, wave=2)

    assert sender.deliver_due() == 2
    assert sender.deliver_due() == 0  # delivered once, never again
    signed, plain = receiver.received()
    rows = _rows(sessions)
    for request, row in zip((signed, plain), rows, strict=True):
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == f"bin-manager/{__version__}"
        assert request.headers["x-bin-manager-event"] == "wave.promoted"
        assert request.headers["x-bin-manager-delivery"] == str(row.id)
        assert json.loads(request.body) == {
            "event": "wave.promoted",
            "text": "Rollout of hello: wave.promoted",
            "at": "2026-12-12T09:00:00Z",
            "data": {"rollout": 7, "wave": 2},
        }
        assert row.delivered_at == START
        assert (row.attempts, row.lease_until, row.last_error) == (0, None, None)
    assert (signed.path, plain.path) == ("/signed", "/plain")
    expected = "sha256=" + hmac.new(SECRET.encode(), signed.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signed.headers["x-bin-manager-signature"], expected)
    assert "x-bin-manager-signature" not in plain.headers
    assert (sender.delivered, sender.failed_attempts, sender.queued) == (2, 0, 0)


def test_an_outage_keeps_the_event_queued_and_backs_off_until_the_receiver_is_back(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(f"{receiver.url()}#secret={SECRET}")
    clock = Clock()
    sender = senders(sessions, targets, clock=clock, timeout=2.0)
    _enqueue(sessions, targets, "rollout.halted")
    _enqueue(sessions, targets, "rollout.reverted")

    receiver.stop()  # the port is closed: connection refused
    assert sender.deliver_due() == 0
    first, second = _rows(sessions)
    assert first.attempts == 1
    assert first.next_attempt_at == START + timedelta(seconds=1)
    assert first.last_error is not None
    assert first.last_error.startswith("ConnectError")
    assert (first.lease_until, first.delivered_at) == (None, None)
    assert second.attempts == 0  # held back behind the first: order is kept
    assert (sender.failed_attempts, sender.queued) == (1, 2)

    receiver.start()
    receiver.status = 503
    assert sender.deliver_due() == 0  # not due yet: nothing is sent
    assert receiver.received() == []
    clock.advance(1)
    assert sender.deliver_due() == 0
    assert len(receiver.received()) == 1
    first = _rows(sessions)[0]
    assert (first.attempts, first.last_error) == (2, "HTTP 503 Service Unavailable")
    assert first.next_attempt_at == START + timedelta(seconds=1 + 2)

    receiver.status = 200
    clock.advance(1)
    assert sender.deliver_due() == 0  # still backing off
    clock.advance(1)
    assert sender.deliver_due() == 2
    events = [json.loads(r.body)["event"] for r in receiver.received()]
    assert events == ["rollout.halted", "rollout.halted", "rollout.reverted"]
    assert all(row.delivered_at == START + timedelta(seconds=3) for row in _rows(sessions))
    assert (sender.delivered, sender.failed_attempts) == (2, 2)


def test_a_redirect_is_a_failure_and_is_not_followed(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(receiver.url())
    sender = senders(sessions, targets, clock=Clock())
    _enqueue(sessions, targets)
    receiver.status = 302
    assert sender.deliver_due() == 0
    assert [r.path for r in receiver.received()] == ["/hook"]
    (row,) = _rows(sessions)
    assert row.last_error == "HTTP 302 Found (redirects are not followed)"


def test_a_receiver_slower_than_the_timeout_is_retried_later(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(receiver.url())
    clock = Clock()
    sender = senders(sessions, targets, clock=clock, timeout=0.2)
    _enqueue(sessions, targets)
    receiver.delay = 1.0
    assert sender.deliver_due() == 0
    (row,) = _rows(sessions)
    assert row.last_error is not None
    assert row.last_error.startswith("ReadTimeout")
    receiver.delay = 0.0
    clock.advance(1)
    assert sender.deliver_due() == 1


def test_queued_events_survive_a_stop_and_a_new_sender_delivers_them_in_order(
    engines: Callable[[], sessionmaker[Session]],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(f"{receiver.url()}#secret={SECRET}")
    first_process = engines()
    receiver.stop()
    before = senders(first_process, targets, interval=0.05, max_backoff=1.0)
    before.start()
    assert before.running
    for event in ("rollout.started", "wave.promoted", "rollout.completed"):
        _enqueue(first_process, targets, event, now=stored_now())
    wait_until(lambda: _rows(first_process)[0].attempts >= 1, 10, "a first failed attempt")
    before.stop()  # as a server stop would
    assert not before.running
    assert all(row.delivered_at is None for row in _rows(first_process))

    receiver.start()
    after = senders(engines(), targets, interval=0.05, max_backoff=1.0)  # a new process
    after.start()
    wait_until(lambda: len(receiver.received()) == 3, 10, "three deliveries after the restart")
    after.stop()
    got = receiver.received()
    assert [json.loads(r.body)["event"] for r in got] == [
        "rollout.started",
        "wave.promoted",
        "rollout.completed",
    ]
    ids = [int(r.headers["x-bin-manager-delivery"]) for r in got]
    assert ids == sorted(ids)
    assert all(row.delivered_at is not None for row in _rows(first_process))


def test_two_senders_on_one_database_deliver_each_event_exactly_once(
    engines: Callable[[], sessionmaker[Session]],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(f"{receiver.url('/a')}#secret={SECRET} {receiver.url('/b')}")
    sessions = engines()
    for number in range(25):
        _enqueue(sessions, targets, "node.rollback", now=stored_now(), number=number)
    receiver.delay = 0.005  # widen the window in which both could pick the same row
    pair = [senders(engines(), targets, interval=0.01) for _ in range(2)]
    for sender in pair:
        sender.start()
    wait_until(lambda: len(receiver.received()) >= 50, 15, "fifty deliveries")
    time.sleep(0.3)  # a duplicate would arrive now
    for sender in pair:
        sender.stop()

    got = receiver.received()
    ids = [int(r.headers["x-bin-manager-delivery"]) for r in got]
    assert len(ids) == len(set(ids)) == 50
    assert sum(sender.delivered for sender in pair) == 50
    for path in ("/a", "/b"):
        numbers = [json.loads(r.body)["data"]["number"] for r in got if r.path == path]
        assert numbers == list(range(25))  # in order for each receiver
    assert all(row.delivered_at is not None for row in _rows(sessions))


def test_a_row_for_a_url_no_longer_configured_is_kept_and_logged_once(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
    caplog: pytest.LogCaptureFixture,
) -> None:
    removed = parse_targets(f"{receiver.url('/removed/token')}#secret={SECRET}")
    kept = parse_targets(receiver.url("/kept"))
    _enqueue(sessions, removed + kept)
    sender = senders(sessions, kept, clock=Clock())
    caplog.set_level(logging.WARNING, logger="ansible_proxy.server.webhooks")
    assert sender.deliver_due() == 1
    assert sender.deliver_due() == 0
    orphan = _rows(sessions)[0]
    assert (orphan.url, orphan.attempts, orphan.delivered_at) == (removed[0].url, 0, None)
    assert [r.path for r in receiver.received()] == ["/kept"]
    notes = [r.getMessage() for r in caplog.records if "no longer configured" in r.getMessage()]
    assert notes == [
        f"1 webhook deliveries to http://{LOOPBACK}:{receiver.port}/… are kept: "
        "that URL is no longer configured"
    ]
    assert (sender.queued, sender.unconfigured) == (0, 1)


def test_no_secret_in_the_rows_the_requests_or_the_log(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    targets = parse_targets(f"{receiver.url()}#secret={SECRET}")
    assert SECRET not in repr(targets)
    clock = Clock()
    sender = senders(sessions, targets, clock=clock)
    _enqueue(sessions, targets)
    receiver.status = 500
    assert sender.deliver_due() == 0
    receiver.stop()
    clock.advance(1)
    assert sender.deliver_due() == 0
    receiver.start()
    receiver.status = 200
    clock.advance(2)
    assert sender.deliver_due() == 1
    assert sender.failed_attempts == 2

    (row,) = _rows(sessions)
    stored = [str(getattr(row, column.key)) for column in WebhookDelivery.__table__.columns]
    assert row.url == receiver.url()
    assert not [value for value in stored if SECRET in value]
    for request in receiver.received():
        assert SECRET.encode() not in request.body
        assert SECRET not in request.path
        assert not [value for value in request.headers.values() if SECRET in value]
    assert "failed" in caplog.text  # the failures were logged...
    assert SECRET not in caplog.text  # ...without the secret


def test_without_targets_start_is_a_no_op(
    sessions: sessionmaker[Session], senders: Callable[..., WebhookSender]
) -> None:
    sender = senders(sessions, ())
    sender.start()
    assert not sender.running
    assert sender.deliver_due() == 0


def _node_event(
    sessions: sessionmaker[Session],
    targets: tuple[WebhookTarget, ...],
    node: str,
    reason: str,
    now: datetime = START,
) -> None:
    data = {"binName": "web", "nodeName": node, "sha256": "a" * 64, "reason": reason}
    with sessions() as session:
        enqueue(session, targets, "node-rollback", f"web: {node} failed: {reason}", data, now)
        session.commit()


def test_a_repeat_waits_for_its_window_without_holding_back_other_events(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(receiver.url())
    clock = Clock()
    rules = Rules(repeat_seconds=60, per_node=0, per_bin=0)
    sender = senders(sessions, targets, clock=clock, rules=rules)
    _node_event(sessions, targets, "web-01", "watch: exited")
    assert sender.deliver_due() == 1
    for _ in range(3):
        _node_event(sessions, targets, "web-01", "watch: exited")
    _enqueue(sessions, targets, "rollout-halted")
    assert sender.deliver_due() == 1  # the halt; the repeats wait, merged into one row
    assert (sender.held, sender.folded, len(_rows(sessions))) == (3, 2, 3)
    clock.advance(59)
    assert sender.deliver_due() == 0
    clock.advance(1)
    assert sender.deliver_due() == 1
    texts = [json.loads(r.body)["text"] for r in receiver.received()]
    assert texts == [
        "web: web-01 failed: watch: exited",
        "Rollout of hello: rollout-halted",
        "web: web-01 failed: watch: exited (and 2 more like it)",
    ]
    assert json.loads(receiver.received()[-1].body)["folded"] == {"count": 2, "scope": "repeat"}
    assert (sender.held, sender.delivered, sender.folded) == (0, 3, 2)


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
def test_two_senders_fold_a_flood_without_losing_or_doubling_an_event(
    engines: Callable[[], sessionmaker[Session]],
    receiver: Receiver,
    senders: Callable[..., WebhookSender],
) -> None:
    targets = parse_targets(receiver.url())
    sessions = engines()
    for number in range(60):
        _node_event(sessions, targets, f"web-{number % 4}", f"r{number % 3}", stored_now())
    rules = Rules(repeat_seconds=0.5, per_node=2, per_bin=100, period_seconds=1)
    pair = [senders(engines(), targets, interval=0.01, rules=rules) for _ in range(2)]
    for sender in pair:
        sender.start()

    def counted() -> int:
        bodies = [json.loads(r.body) for r in receiver.received()]
        return sum(1 + body.get("folded", {}).get("count", 0) for body in bodies)

    wait_until(lambda: counted() >= 60 and not _rows_waiting(sessions), 30, "every event")
    for sender in pair:
        sender.stop()
    ids = [int(r.headers["x-bin-manager-delivery"]) for r in receiver.received()]
    assert len(ids) == len(set(ids)) < 60
    assert counted() == 60
    assert sum(sender.folded for sender in pair) == 60 - len(ids)


def _rows_waiting(sessions: sessionmaker[Session]) -> int:
    return sum(1 for row in _rows(sessions) if row.delivered_at is None)
