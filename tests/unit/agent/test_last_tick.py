"""The last tick's record and what `status` says of it (agent/last_tick.py)."""

from __future__ import annotations

from pathlib import Path

from ansible_proxy.agent import last_tick
from ansible_proxy.agent.last_tick import LastTick

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_a_tick_is_recorded_and_read_back_whole(tmp_path: Path) -> None:
    tick = LastTick(T0, T0 + 2, 75, "API GET …: unreachable", 60.0)
    last_tick.record(tmp_path, tick)
    assert last_tick.load(tmp_path) == tick
    assert [p.name for p in tmp_path.iterdir()] == [".last-tick.json"]  # no temp file left


def test_nothing_is_written_where_the_store_is_not(tmp_path: Path) -> None:
    last_tick.record(tmp_path / "missing", LastTick(T0, T0, 0, "ok", 60.0))
    assert not (tmp_path / "missing").exists()
    assert last_tick.load(tmp_path / "missing") is None


def test_an_unreadable_record_is_no_record(tmp_path: Path) -> None:
    (tmp_path / ".last-tick.json").write_text('{"started": "then"}')
    assert last_tick.load(tmp_path) is None


def test_status_says_when_ticks_stopped() -> None:
    tick = LastTick(T0, T0 + 1, 0, "ok", 60.0)
    assert (
        last_tick.describe(tick, T0 + 31)
        == "last tick: 2027-01-15T08:00:01Z (30 s ago), exit 0: ok"
    )
    assert not tick.missed(T0 + 181)
    late = last_tick.describe(tick, T0 + 1 + 600)
    assert late.endswith(
        "(10 min ago), exit 0: ok; MISSED: no tick for 10 min, expected every 60 s: is cron "
        "(or the daemon) still running `ansible-proxy run`?"
    )
    assert last_tick.describe(None, T0).startswith("last tick: none recorded")


def test_the_outcome_is_one_line() -> None:
    assert last_tick.outcome(0, []) == "ok"
    assert last_tick.outcome(1, ["a: failed", "b: failed"]) == "a: failed (and 1 more)"
    assert last_tick.outcome(75, []) == "exit 75"
