"""The queue on a real SQLite database: one row per target in the caller's transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db.models import WebhookDelivery
from ansible_proxy.server.webhooks.queue import enqueue, prune_delivered
from ansible_proxy.server.webhooks.sender import backoff, signature
from ansible_proxy.server.webhooks.targets import WebhookTarget

NOW = datetime(2026, 12, 12, 9, 30, 5)
TARGETS = (
    WebhookTarget("https://a.example/hook", secret="hunter2"),
    WebhookTarget("http://b.example/"),
)


def _rows(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_an_event_is_one_row_per_target_with_the_json_body(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        enqueue(
            session,
            TARGETS,
            "rollout.started",
            "Rollout 7 of hello\nstarted",
            {"rollout": 7, "bin": "hello", "wave": [1, 2]},
            NOW,
        )
        session.commit()
    rows = _rows(sessions)
    assert [row.url for row in rows] == [target.url for target in TARGETS]
    for row in rows:
        assert (row.event, row.attempts, row.delivered_at, row.lease_until) == (
            "rollout.started",
            0,
            None,
            None,
        )
        assert row.created_at == row.next_attempt_at == NOW
        assert json.loads(row.body) == {
            "event": "rollout.started",
            "text": "Rollout 7 of hello started",
            "at": "2026-12-12T09:30:05Z",
            "data": {"rollout": 7, "bin": "hello", "wave": [1, 2]},
        }
        assert "hunter2" not in row.url + row.body


def test_an_aware_time_is_stored_as_naive_utc(sessions: sessionmaker[Session]) -> None:
    paris = timezone(timedelta(hours=1))
    with sessions() as session:
        enqueue(
            session, TARGETS[:1], "node.rollback", "x", {}, datetime(2026, 1, 1, 1, tzinfo=paris)
        )
        session.commit()
    (row,) = _rows(sessions)
    assert row.created_at == datetime(2026, 1, 1, 0, 0)
    assert json.loads(row.body)["at"] == "2026-01-01T00:00:00Z"


def test_nothing_is_queued_when_the_callers_transaction_rolls_back(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        enqueue(session, TARGETS, "rollout.halted", "halted", {}, NOW)
        session.rollback()
    assert _rows(sessions) == []


def test_an_event_name_longer_than_the_column_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(ValueError, match="event name"):
        enqueue(session, TARGETS, "e" * 33, "x", {}, NOW)


def test_prune_deletes_only_rows_delivered_before_the_cut(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        for _ in range(3):
            enqueue(session, TARGETS[:1], "rollout.completed", "done", {}, NOW)
        session.flush()
        old, recent, waiting = session.scalars(select(WebhookDelivery)).all()
        old.delivered_at = NOW - timedelta(days=8)
        recent.delivered_at = NOW - timedelta(days=1)
        session.commit()
    with sessions() as session:
        assert prune_delivered(session, NOW - timedelta(days=7)) == 1
        session.commit()
    assert [row.id for row in _rows(sessions)] == [recent.id, waiting.id]
    with sessions() as session:
        assert prune_delivered(session, NOW.replace(tzinfo=UTC)) == 1  # an aware cut works too
        session.commit()
    assert [row.id for row in _rows(sessions)] == [waiting.id]


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    assert [backoff(n, 300) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff(10_000, 300) == 300


def test_the_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"x"}'
    expected = hmac.new(b"hunter2", body, hashlib.sha256).hexdigest()
    assert signature("hunter2", body) == f"sha256={expected}"
