"""Pure: maintenance windows, when a rollout's waves may start (`--window`).

One window is `DAYS HH:MM-HH:MM ZONE`, optionally for the nodes with a label first:

  Mon-Fri 09:00-17:00 Europe/Berlin
  cluster=eu: Mon-Thu 08:00-16:00 Europe/Berlin
  Sat,Sun 22:00-04:00 UTC              (past midnight: until 04:00 the next day)
  daily 00:00-24:00 America/New_York

DAYS is a day (`Mon`), a range (`Mon-Fri`, `Fri-Mon` wraps), a list of those (`Mon,Wed,
Fri-Sat`) or `daily`; times are the zone's wall clock (zoneinfo: daylight saving time
included), the end excluded; a window whose end is not after its start runs past
midnight and belongs to the day it starts on. Several windows, `;` between them. A
window without a label applies to every node, `k=v: ` (a colon and a space) to the nodes
an admin labelled so (`reported:k=v: ` for the nodes' own NODE_LABELS). A wave may start
when every window that applies to one of its nodes is open; the times are the server's
calendar clock (rollouts/calendar.py), never a node's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ansible_proxy.server.rollouts.options import PolicyError, parse_canary_label

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WINDOWS = 16


@dataclass(frozen=True)
class Window:
    """When waves may start: on `days` (0 Monday), from `start` to `end` in `zone`."""

    days: frozenset[int]
    start: time
    end: time | None  # None: midnight at the end of the day (24:00)
    zone: str
    label: tuple[str, str] | None = None  # (key, value); the key "reported:k" for NODE_LABELS
    text: str = ""  # as the operator wrote it (normalised)

    def applies_to(self, labels: Mapping[str, str]) -> bool:
        return self.label is None or labels.get(self.label[0]) == self.label[1]

    def _overnight(self) -> bool:
        return self.end is not None and self.end <= self.start

    def is_open(self, moment: datetime) -> bool:
        """True when `moment` (aware) is inside the window."""
        local = moment.astimezone(ZoneInfo(self.zone))
        now, day = local.time(), local.weekday()
        if self._overnight():
            assert self.end is not None
            return (day in self.days and now >= self.start) or (
                (day - 1) % 7 in self.days and now < self.end
            )
        return day in self.days and now >= self.start and (self.end is None or now < self.end)

    def next_open(self, moment: datetime) -> datetime:
        """`moment` when open, else when the window next opens (aware, in its zone)."""
        if self.is_open(moment):
            return moment
        zone = ZoneInfo(self.zone)
        today = moment.astimezone(zone).date()
        for ahead in range(8):
            day: date = today + timedelta(days=ahead)
            if day.weekday() in self.days:
                opens = datetime.combine(day, self.start, tzinfo=zone)
                if opens > moment:
                    return opens
        raise AssertionError("a window with days opens within a week")  # parse checks days


def parse_windows(text: str) -> tuple[Window, ...]:
    """`--window` (several separated by `;`); PolicyError naming what is wrong."""
    parts = [part.strip() for part in text.split(";") if part.strip()]
    if not parts:
        raise PolicyError("--window is empty: give one like 'Mon-Fri 09:00-17:00 Europe/Berlin'")
    if len(parts) > MAX_WINDOWS:
        raise PolicyError(f"--window: at most {MAX_WINDOWS} windows")
    return tuple(_window(part) for part in parts)


def describe(windows: Sequence[Window]) -> str:
    return "; ".join(window.text for window in windows)


def _window(text: str) -> Window:
    label = None
    scope, scoped, rest = text.partition(": ")
    if scoped:
        try:
            label = parse_canary_label(scope)
        except PolicyError:
            raise PolicyError(
                f"--window {text!r:.80}: {scope!r:.40} is not k=v (or reported:k=v)"
            ) from None
    else:
        rest = text
    words = rest.split()
    if len(words) != 3:
        raise PolicyError(
            f"--window {text!r:.80}: expected [k=v:] DAYS HH:MM-HH:MM ZONE, like "
            "'Mon-Fri 09:00-17:00 Europe/Berlin'"
        )
    days_text, hours, zone = words
    days = _days(days_text, text)
    start_text, _, end_text = hours.partition("-")
    start = _clock(start_text, text)
    end = None if end_text == "24:00" else _clock(end_text, text)
    if end is not None and end == start:
        raise PolicyError(f"--window {text!r:.80}: the window opens and closes at {start_text}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"--window {text!r:.80}: unknown time zone {zone!r:.40}") from None
    scope = f"{'='.join(label)}: " if label else ""
    return Window(days, start, end, zone, label, f"{scope}{days_text} {hours} {zone}")


def _days(text: str, whole: str) -> frozenset[int]:
    if text.lower() in ("daily", "*"):
        return frozenset(range(7))
    found: set[int] = set()
    for item in text.lower().split(","):
        first, _, last = item.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise PolicyError(
                f"--window {whole!r:.80}: days are Mon…Sun, ranges (Mon-Fri), lists or daily"
            )
        begin, stop = DAYS.index(first), DAYS.index(last or first)
        found.update((begin + step) % 7 for step in range((stop - begin) % 7 + 1))
    return frozenset(found)


def _clock(text: str, whole: str) -> time:
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        raise PolicyError(f"--window {whole!r:.80}: times are HH:MM-HH:MM (24:00 ends a day)")
    if int(hours) > 23 or int(minutes) > 59:
        raise PolicyError(f"--window {whole!r:.80}: {text!r} is no time of day")
    return time(int(hours), int(minutes))
