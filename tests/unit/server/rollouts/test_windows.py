"""Maintenance windows (rollouts/windows.py), pure: the syntax, one clear error each, and
when a window is open or next opens — past midnight, across daylight saving time, for
the nodes of one label only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ansible_proxy.server.rollouts.options import PolicyError
from ansible_proxy.server.rollouts.windows import describe, parse_windows


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_working_day_window_in_berlin() -> None:
    (window,) = parse_windows("Mon-Fri 09:00-17:00 Europe/Berlin")
    assert window.is_open(at("2026-12-21T09:00+01:00"))  # a Monday, 09:00 in Berlin
    assert window.is_open(at("2026-12-21T16:59+01:00"))
    assert not window.is_open(at("2026-12-21T17:00+01:00"))  # the end is excluded
    assert not window.is_open(at("2026-12-21T08:59+01:00"))
    assert not window.is_open(at("2026-12-19T12:00+01:00"))  # a Saturday
    assert window.next_open(at("2026-12-19T12:00+01:00")) == at("2026-12-21T09:00+01:00")
    assert window.next_open(at("2026-12-21T18:00+01:00")) == at("2026-12-22T09:00+01:00")
    moment = at("2026-12-21T10:00+01:00")
    assert window.next_open(moment) == moment


def test_summer_time_is_the_zone_s_own() -> None:
    (window,) = parse_windows("daily 09:00-10:00 Europe/Berlin")
    assert window.is_open(at("2026-07-01T07:30Z"))  # 09:30 CEST
    assert not window.is_open(at("2026-12-01T07:30Z"))  # 08:30 CET
    assert window.next_open(at("2026-03-28T12:00Z")) == at("2026-03-29T09:00+02:00")


def test_past_midnight_and_wrapping_days() -> None:
    (window,) = parse_windows("Fri-Mon 22:00-04:00 UTC")
    assert window.is_open(at("2026-12-18T23:00Z"))  # Friday night
    assert window.is_open(at("2026-12-19T03:59Z"))  # Saturday early: Friday's window
    assert window.is_open(at("2026-12-22T03:00Z"))  # Tuesday early: Monday's window
    assert not window.is_open(at("2026-12-23T03:00Z"))  # Wednesday early: no Tuesday one
    (whole,) = parse_windows("Sat,Sun 00:00-24:00 UTC")
    assert whole.is_open(at("2026-12-19T23:59Z"))
    assert not whole.is_open(at("2026-12-21T00:00Z"))


def test_a_window_for_the_nodes_of_one_label() -> None:
    every, eu, own = parse_windows(
        "daily 00:00-24:00 UTC; cluster=eu: Mon-Thu 08:00-16:00 Europe/Berlin;"
        " reported:site=b: Tue 10:00-11:00 UTC"
    )
    assert every.applies_to({})
    assert every.label is None
    assert eu.applies_to({"cluster": "eu"})
    assert not eu.applies_to({"cluster": "us"})
    assert own.applies_to({"reported:site": "b"})
    assert not own.applies_to({"site": "b"})
    assert describe((every, eu)) == (
        "daily 00:00-24:00 UTC; cluster=eu: Mon-Thu 08:00-16:00 Europe/Berlin"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--window is empty"),
        ("Mon-Fri 09:00-17:00", "expected [k=v:] DAYS HH:MM-HH:MM ZONE"),
        ("Someday 09:00-17:00 UTC", "days are Mon…Sun, ranges (Mon-Fri), lists or daily"),
        ("Mon 9-17 UTC", "times are HH:MM-HH:MM"),
        ("Mon 25:00-26:00 UTC", "'25:00' is no time of day"),
        ("Mon 09:00-09:00 UTC", "opens and closes at 09:00"),
        ("Mon 09:00-17:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("tier: Mon 09:00-17:00 UTC", "'tier' is not k=v (or reported:k=v)"),
    ],
)
def test_a_bad_window_is_named(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_windows(text)
    assert message in str(refused.value)
