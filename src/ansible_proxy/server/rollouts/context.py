"""What every rollout change is given: the server's rollout settings and the notifier
(`Context`), and how a wave is named in the activity log and status."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ansible_proxy.server.rollouts.policy import Policy

# (session, event, text, data, now): queues one notification per webhook receiver.
Notify = Callable[[Session, str, str, Mapping[str, Any], datetime], None]


def no_notify(
    _session: Session, _event: str, _text: str, _data: Mapping[str, Any], _now: datetime
) -> None:
    """The notifier when no webhook is configured."""


@dataclass(frozen=True)
class Context:
    """What rollout changes need besides the session: the server's settings, the notifier."""

    default_policy: Policy
    silent_seconds: float
    notify: Notify = no_notify
    stale_seconds: float = 86_400.0  # not heard this long: left out of a new rollout
    stuck_seconds: float = 3_600.0  # a wave waiting this long past its bake: rollout-stuck
    # The calendar clock windows and freezes are judged by (aware, UTC): calendar.py.
    calendar: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def wave_name(wave: int) -> str:
    if wave < 0:
        return "no wave yet"  # the canary waits for its window or the end of a freeze
    return "the canary" if wave == 0 else f"wave {wave}"
