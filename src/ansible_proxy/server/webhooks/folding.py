"""Folding: node events that repeat, or come faster than the limits, sent as one summary.

A node event is one whose data names a node (today `node-rollback`): a node's report
makes it, so a node, or many, can make as many as they like. Per receiver:

- a repeat (same event, bin, node, release and reason) of one sent in the last
  `repeat_seconds` waits until that window has passed;
- beyond `per_node` node events of one node, or `per_bin` of one bin, sent in the last
  `period_seconds`, the next waits until the window has room.

Waiting events are merged into the oldest of their group (one queued row with a count)
and that row goes out as a summary: "… (and 49 more like it)". Nothing is dropped.
Pure: no I/O and no clock; sender.py reads the rows, applies the plan and sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

# Narrowest first: a group merged under a wider rule stays as wide.
Scope = Literal["repeat", "node", "bin"]
_SCOPES: tuple[Scope, ...] = ("repeat", "node", "bin")
MAX_MERGE = 200  # rows merged in one transaction; the rest in the next round


@dataclass(frozen=True)
class Rules:
    """The window for repeats, and the limits per node and per bin (0: none)."""

    repeat_seconds: float = 300.0
    per_node: int = 5
    per_bin: int = 20
    period_seconds: float = 60.0


@dataclass(frozen=True)
class Subject:
    """What a node event is about: two events with equal subjects are repeats."""

    event: str
    bin: str
    node: str
    release: str
    reason: str


@dataclass(frozen=True)
class Folded:
    """How many more events a queued row stands for, and how they were grouped."""

    count: int = 0
    scope: Scope = "repeat"


@dataclass(frozen=True)
class Queued:
    """An undelivered row as the plan needs it."""

    id: int
    subject: Subject | None
    folded: Folded
    due: bool
    leased: bool  # by a process sending it now
    attempts: int


@dataclass(frozen=True)
class Sent:
    """A delivered row: what it was about and when it went out."""

    subject: Subject | None
    at: datetime


@dataclass(frozen=True)
class Merge:
    """Delete `rows` and add them (and what they stand for) to the count of row `into`."""

    into: int
    rows: tuple[int, ...]
    scope: Scope


@dataclass(frozen=True)
class Plan:
    """One step for one receiver: the merges to make, then the row to send (or None)."""

    merges: tuple[Merge, ...]
    head: int | None
    held: int  # events waiting for a window to pass (rows and the events they stand for)


def subject_of(body: Mapping[str, Any]) -> Subject | None:
    """The subject of a queued body, or None when its event is not about a node."""
    data = body.get("data")
    if not isinstance(data, Mapping):
        return None
    node = data.get("nodeName")
    if not isinstance(node, str) or not node:
        return None
    return Subject(
        event=str(body.get("event", "")),
        bin=str(data.get("binName", "")),
        node=node,
        release=str(data.get("sha256") or data.get("release") or ""),
        reason=str(data.get("reason") or ""),
    )


def folded_of(body: Mapping[str, Any]) -> Folded:
    """What a queued body already stands for (nothing for a body never merged into)."""
    folded = body.get("folded")
    if not isinstance(folded, Mapping):
        return Folded()
    count, scope = folded.get("count"), folded.get("scope")
    return Folded(
        count=count if isinstance(count, int) and count > 0 else 0,
        scope=scope if scope in _SCOPES else "repeat",
    )


def plan(queued: Sequence[Queued], sent: Sequence[Sent], now: datetime, rules: Rules) -> Plan:
    """Merge each waiting group into its oldest row; send the oldest row not waiting.

    `queued` in id order. As before folding, a row backing off or leased by another
    process holds back the rows after it; a waiting row holds back nothing.
    """
    hold = _Holds(sent, now, rules)
    groups: dict[tuple[Scope, object], list[Queued]] = {}
    head: Queued | None = None
    blocked = False
    held = 0
    for row in queued:
        scope = hold.scope(row.subject)
        if scope is not None and row.subject is not None:
            groups.setdefault((scope, _group(scope, row.subject)), []).append(row)
            held += 1 + row.folded.count
        elif head is None and not blocked:
            if row.leased or not row.due:
                blocked = True
            else:
                head = row
    merges: list[Merge] = []
    if head is not None and head.subject is not None and _mergeable(head):
        same = [r for r in queued if r.id != head.id and r.subject == head.subject]
        merges += _merge([head, *same], "repeat")
    for (scope, _), rows in groups.items():
        merges += _merge(rows, scope)
    return Plan(tuple(merges), None if head is None else head.id, held)


def merged(
    into: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], scope: Scope
) -> dict[str, Any]:
    """The body of `into` once `rows` are merged into it (a new dict)."""
    before = folded_of(into)
    count = before.count + sum(1 + folded_of(row).count for row in rows)
    widest = max([before.scope, scope, *(folded_of(row).scope for row in rows)], key=_width)
    return {**into, "folded": {"count": count, "scope": widest}}


def summary(body: Mapping[str, Any]) -> str:
    """The sentence a summary's `text` ends with ("" for a body that stands for itself)."""
    folded = folded_of(body)
    if folded.count == 0:
        return ""
    data = body.get("data")
    names = data if isinstance(data, Mapping) else {}  # A-Z a-z 0-9 . _ - only: no markup
    if folded.scope == "node":
        return f" (and {folded.count} more from {names.get('nodeName', '?')})"
    if folded.scope == "bin":
        return f" (and {folded.count} more of {names.get('binName', '?')})"
    return f" (and {folded.count} more like it)"


class _Holds:
    """Whether a subject waits now, given what was sent: counted once per plan."""

    def __init__(self, sent: Sequence[Sent], now: datetime, rules: Rules) -> None:
        self.rules = rules
        period = now - timedelta(seconds=rules.period_seconds)
        repeat = now - timedelta(seconds=rules.repeat_seconds)
        recent = [s.subject for s in sent if s.subject is not None and s.at > period]
        self.per_node = Counter(subject.node for subject in recent)
        self.per_bin = Counter(subject.bin for subject in recent)
        self.repeats = {s.subject for s in sent if s.subject is not None and s.at > repeat}

    def scope(self, subject: Subject | None) -> Scope | None:
        """The widest rule that holds `subject` back now, or None when it may go."""
        if subject is None:
            return None
        rules = self.rules
        if rules.per_bin and self.per_bin[subject.bin] >= rules.per_bin:
            return "bin"
        if rules.per_node and self.per_node[subject.node] >= rules.per_node:
            return "node"
        if rules.repeat_seconds and subject in self.repeats:
            return "repeat"
        return None


def _group(scope: Scope, subject: Subject) -> object:
    if scope == "bin":
        return subject.bin
    if scope == "node":
        return subject.node
    return subject


def _mergeable(row: Queued) -> bool:
    # A row tried before may have reached its receiver: it is sent again as it was.
    return row.attempts == 0 and not row.leased


def _merge(rows: Sequence[Queued], scope: Scope) -> list[Merge]:
    """The merge of the mergeable `rows` into the first of them (none for fewer than 2)."""
    usable = [row for row in rows if _mergeable(row)]
    if len(usable) < 2:
        return []
    return [Merge(usable[0].id, tuple(row.id for row in usable[1 : MAX_MERGE + 1]), scope)]


def _width(scope: Scope) -> int:
    return _SCOPES.index(scope)
