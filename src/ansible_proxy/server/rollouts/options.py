"""Pure: the options of a rollout policy, each parsed and checked with one message that
names it: counts (`3`, `10%`), wave shares, canaries by label or name, wait limits and
durations (`--watch 1h`). policy.py makes a Policy of them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from ansible_proxy.names import is_node_name, parse_labels

MAX_WAVES = 10
MAX_BAKE_SECONDS = 7 * 86_400
MAX_CANARY_NODES = 50
# `--canary-label reported:k=v` matches NODE_LABELS, what a node reports of itself; a
# plain `k=v` matches the labels an admin set (`bin-manager nodes label`).
REPORTED = "reported:"
MAX_WATCH_SECONDS = 7 * 86_400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the option and the problem."""


@dataclass(frozen=True)
class Count:
    """A number of nodes, or a percentage of some whole (`3`, `10%`)."""

    value: int
    percent: bool

    def of(self, whole: int) -> int:
        """How many nodes of `whole` this is: a percentage rounds up, never below 1."""
        if not self.percent:
            return self.value
        return max(1, math.ceil(self.value * whole / 100))

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


ONE_NODE = Count(1, False)


def parse_count(text: str, option: str, *, allow_zero: bool = False) -> Count:
    """`N` or `P%` (1-100 %); PolicyError naming `option` otherwise."""
    raw = text.strip()
    percent = raw.endswith("%")
    digits = raw[:-1].strip() if percent else raw
    if not digits.isdigit() or len(digits) > 6:
        raise PolicyError(f"{option} {text!r:.40}: expected a number of nodes or a percentage")
    value = int(digits)
    lowest = 0 if allow_zero and not percent else 1
    if value < lowest or (percent and value > 100):
        limit = "1-100 %" if percent else f"at least {lowest}"
        raise PolicyError(f"{option} {text!r:.40}: must be {limit}")
    return Count(value, percent)


def parse_waves(text: str) -> tuple[int, ...]:
    """`25%,50%,100%` → (25, 50, 100): rising shares of the fleet, 100 added when missing."""
    shares: list[int] = []
    for item in text.split(","):
        share = parse_count(item, "--waves")
        if not share.percent:
            raise PolicyError(f"--waves {item.strip()!r:.40}: each wave is a share, like 50%")
        if shares and share.value <= shares[-1]:
            raise PolicyError(
                f"--waves {text!r:.80}: each share must be larger than the one before"
            )
        shares.append(share.value)
    if not shares:
        raise PolicyError("--waves is empty: give shares like 25%,100%")
    if shares[-1] < 100:
        shares.append(100)
    if len(shares) > MAX_WAVES:
        raise PolicyError(f"--waves: at most {MAX_WAVES} waves after the canary")
    return tuple(shares)


def parse_canary_label(text: str) -> tuple[str, str]:
    """`k=v` (an admin's label) or `reported:k=v` (NODE_LABELS) → (key, value); the key
    keeps the `reported:` prefix."""
    prefix = REPORTED if text.strip().startswith(REPORTED) else ""
    try:
        parsed = parse_labels(text.strip()[len(prefix) :])
    except ValueError as exc:
        raise PolicyError(f"--canary-label: {exc}") from None
    if len(parsed) != 1:
        raise PolicyError(f"--canary-label {text!r:.60}: exactly one k=v (or reported:k=v)")
    key, value = next(iter(parsed.items()))
    return prefix + key, value


def parse_canary_nodes(text: str) -> tuple[str, ...]:
    """`a,b` → ("a", "b"): node names, each once, at most MAX_CANARY_NODES."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if not is_node_name(name):
            raise PolicyError(f"--canary-nodes: {name!r:.80} is not a node name")
    if not names:
        raise PolicyError("--canary-nodes is empty: give node names like web-01,web-02")
    if len(set(names)) != len(names):
        raise PolicyError("--canary-nodes: a node is named twice")
    if len(names) > MAX_CANARY_NODES:
        raise PolicyError(f"--canary-nodes: at most {MAX_CANARY_NODES} nodes")
    return tuple(names)


def parse_limit(text: str | None, option: str) -> Count | None:
    """`--max-offline` / `--max-refused`: N (0 allowed: none at all) or P%; None: no limit."""
    if text is None or not str(text).strip():
        return None
    return parse_count(str(text), option, allow_zero=True)


def parse_duration(
    value: int | str, option: str, longest: timedelta = timedelta(seconds=MAX_WATCH_SECONDS)
) -> int:
    """Seconds from `3600`, `90s`, `10m`, `1h`, `1h30m` or `2d` (at most `longest`)."""
    text = str(value).strip().lower()
    total, digits, units, bad = 0, "", "", not text or len(text) > 16
    for char in text:
        if char.isdigit():
            digits += char
        elif char in _UNITS and digits and char not in units:
            total, digits, units = total + int(digits) * _UNITS[char], "", units + char
        else:
            bad = True
    if bad:
        raise PolicyError(f"{option} {value!r:.40}: seconds, or a duration like 90s, 10m, 1h30m")
    total += int(digits) if digits else 0
    if total > longest.total_seconds():
        days = longest.days
        raise PolicyError(f"{option} {value!r:.40}: at most {days} days")
    return total


def format_duration(seconds: int) -> str:
    """`3600` → `1h`, `5400` → `1h30m`, `45` → `45s`: parse_duration's words."""
    parts, rest = [], seconds
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
