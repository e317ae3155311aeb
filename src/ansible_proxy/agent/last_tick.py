"""When the last tick ran and how it ended, for `ansible-proxy status`: a host whose cron
stopped must not look healthy.

Every tick (`run`, each of `daemon`'s) replaces `STORE_DIR/.last-tick.json` at its end,
whatever the end: its start and end times, exit code, one line saying how it went, and
how often ticks are expected. A tick killed outright (SIGKILL, power) leaves the one
before. `status` calls a tick *missed* when none ended for three of those intervals.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_proxy.client.files import write_atomic
from ansible_proxy.errors import EXIT_OK

FILE_NAME = ".last-tick.json"
CRON_INTERVAL = 60.0  # what install-cron writes: a tick every minute
MISSED_AFTER = 3  # intervals without a tick, as the dashboard's "stale" (3 minutes)


@dataclass(frozen=True)
class LastTick:
    """One tick's record: wall-clock times (seconds), exit code, outcome, interval."""

    started: float
    ended: float
    exit_code: int
    outcome: str
    interval: float

    def missed(self, now: float) -> bool:
        """No tick ended for MISSED_AFTER intervals (cron stopped, the host was off)."""
        return now - self.ended > MISSED_AFTER * self.interval

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "startedAt": _iso(self.started),
            "endedAt": _iso(self.ended),
            "secondsAgo": max(0, round(now - self.ended)),
            "exitCode": self.exit_code,
            "outcome": self.outcome,
            "intervalSeconds": self.interval,
            "missed": self.missed(now),
        }


def record(store_dir: Path, tick: LastTick) -> None:
    """Replace the record, atomically; never fails the tick (a store that cannot be
    written is that tick's own error, said already)."""
    if not store_dir.is_dir():  # a tick that stopped before it could make STORE_DIR
        return
    body = {
        "started": tick.started,
        "ended": tick.ended,
        "exitCode": tick.exit_code,
        "outcome": tick.outcome,
        "interval": tick.interval,
    }
    with contextlib.suppress(OSError):
        write_atomic(store_dir / FILE_NAME, json.dumps(body).encode(), mode=0o644)


def load(store_dir: Path) -> LastTick | None:
    """The last tick's record; None when no tick has ended here (or it is unreadable)."""
    try:
        data = json.loads((store_dir / FILE_NAME).read_text(encoding="utf-8"))
        return LastTick(
            float(data["started"]),
            float(data["ended"]),
            int(data["exitCode"]),
            str(data["outcome"]),
            float(data["interval"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def outcome(code: int, failures: list[str]) -> str:
    """One line: "ok", or the first failure (and how many more)."""
    if code == EXIT_OK and not failures:
        return "ok"
    if not failures:
        return f"exit {code}"
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"{failures[0][:300]}{more}"


def describe(tick: LastTick | None, now: float) -> str:
    """The `status` line about the last tick."""
    if tick is None:
        return (
            "last tick: none recorded: `ansible-proxy run` has not run here yet (cron: "
            "`ansible-proxy install-cron`)"
        )
    ago = _ago(now - tick.ended)
    line = f"last tick: {_iso(tick.ended)} ({ago} ago), exit {tick.exit_code}: {tick.outcome}"
    if tick.missed(now):
        line += (
            f"; MISSED: no tick for {ago}, expected every {_ago(tick.interval)}: is cron (or "
            "the daemon) still running `ansible-proxy run`?"
        )
    return line


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
