"""Pure: a rollout policy, parsed and checked; the waves of a fleet; failure thresholds.

A policy is what `bin-manager rollout set` takes: `--canary N|P%`, `--waves P%,P%,…`
(cumulative shares of the fleet, the last one made 100 % when it is less), `--bake
SECONDS`, `--max-failures N|P%` (of each wave), `--canary-label [reported:]k=v`,
`--canary-nodes a,b`, `--max-offline N|P%` and `--max-refused N|P%` (of each wave: with
more nodes offline, or refusing the release, the wave waits); or `--immediate`. Nodes are
ordered by an HMAC of (bin, node name) under the server's secret (server/db/secrets.py),
so every replica, and the same server after a restart, makes the same waves, and no node
can choose a name that sorts first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_proxy.names import is_node_name, parse_labels

MAX_WAVES = 10
MAX_BAKE_SECONDS = 7 * 86_400
MAX_CANARY_NODES = 50
# `--canary-label reported:k=v` matches NODE_LABELS, what a node reports of itself; a
# plain `k=v` matches the labels an admin set (`bin-manager nodes label`).
REPORTED = "reported:"


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


@dataclass(frozen=True)
class Policy:
    """How a bin's new releases reach its nodes; `immediate`: all at once, as before."""

    immediate: bool
    canary: Count = Count(1, False)
    waves: tuple[int, ...] = (100,)
    bake_seconds: int = 0
    max_failures: Count = Count(1, False)
    canary_label: tuple[str, str] | None = None  # the key is "reported:k" for NODE_LABELS
    canary_nodes: tuple[str, ...] = ()
    # More offline (or refusing) members than this in a wave: it waits (None: no limit).
    max_offline: Count | None = None
    max_refused: Count | None = None

    def to_dict(self) -> dict[str, Any]:
        """The policy as the API and `rollout status --json` show it (`describe`: in
        `rollout set`'s words)."""
        if self.immediate:
            return {"immediate": True, "describe": self.describe()}
        label = "=".join(self.canary_label) if self.canary_label else None
        return {
            "immediate": False,
            "describe": self.describe(),
            "canary": str(self.canary),
            "waves": ",".join(f"{share}%" for share in self.waves),
            "bakeSeconds": self.bake_seconds,
            "maxFailures": str(self.max_failures),
            "canaryLabel": label,
            "canaryNodes": ",".join(self.canary_nodes) or None,
            "maxOffline": None if self.max_offline is None else str(self.max_offline),
            "maxRefused": None if self.max_refused is None else str(self.max_refused),
        }

    def describe(self) -> str:
        """One line, in `rollout set`'s own words."""
        if self.immediate:
            return "--immediate"
        text = (
            f"--canary {self.canary} --waves {','.join(f'{s}%' for s in self.waves)} "
            f"--bake {self.bake_seconds} --max-failures {self.max_failures}"
        )
        if self.canary_label:
            text += f" --canary-label {'='.join(self.canary_label)}"
        if self.canary_nodes:
            text += f" --canary-nodes {','.join(self.canary_nodes)}"
        if self.max_offline is not None:
            text += f" --max-offline {self.max_offline}"
        if self.max_refused is not None:
            text += f" --max-refused {self.max_refused}"
        return text


IMMEDIATE = Policy(immediate=True)


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


def make_policy(
    *,
    immediate: bool = False,
    canary: str | None = None,
    waves: str | None = None,
    bake: int | str | None = None,
    max_failures: str | None = None,
    canary_label: str | None = None,
    canary_nodes: str | None = None,
    max_offline: str | None = None,
    max_refused: str | None = None,
) -> Policy:
    """A checked policy from `rollout set`'s option values (the first four required unless
    immediate)."""
    staged = {"--canary": canary, "--waves": waves, "--bake": bake, "--max-failures": max_failures}
    if immediate:
        given = [name for name, value in staged.items() if value is not None]
        optional = {
            "--canary-label": canary_label,
            "--canary-nodes": canary_nodes,
            "--max-offline": max_offline,
            "--max-refused": max_refused,
        }
        given += [name for name, value in optional.items() if value]
        if given:
            raise PolicyError(f"--immediate takes no other option (got {', '.join(given)})")
        return IMMEDIATE
    missing = [name for name, value in staged.items() if value is None]
    if missing:
        raise PolicyError(f"missing {', '.join(missing)} (or say --immediate)")
    assert canary is not None
    assert waves is not None
    assert max_failures is not None
    bake_text = str(bake).strip()
    if not bake_text.isdigit() or int(bake_text) > MAX_BAKE_SECONDS:
        raise PolicyError(f"--bake {bake!r:.40}: seconds from 0 to {MAX_BAKE_SECONDS}")
    return Policy(
        immediate=False,
        canary=parse_count(canary, "--canary"),
        waves=parse_waves(waves),
        bake_seconds=int(bake_text),
        max_failures=parse_count(max_failures, "--max-failures"),
        canary_label=parse_canary_label(canary_label) if canary_label else None,
        canary_nodes=parse_canary_nodes(canary_nodes) if canary_nodes else (),
        max_offline=_limit(max_offline, "--max-offline"),
        max_refused=_limit(max_refused, "--max-refused"),
    )


def _limit(text: str | None, option: str) -> Count | None:
    """`--max-offline` / `--max-refused`: N (0 allowed: none at all) or P%; None: no limit."""
    if text is None or not str(text).strip():
        return None
    return parse_count(str(text), option, allow_zero=True)


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


_OPTIONS = {
    "--canary": "canary",
    "--waves": "waves",
    "--bake": "bake",
    "--max-failures": "max_failures",
    "--canary-label": "canary_label",
    "--canary-nodes": "canary_nodes",
    "--max-offline": "max_offline",
    "--max-refused": "max_refused",
}


def parse_policy_text(text: str) -> Policy:
    """`--immediate` (or `immediate`) or `rollout set`'s options in one string (a setting)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise PolicyError(f"{text!r:.80}: {exc}") from None
    if words in (["immediate"], ["--immediate"]):
        return IMMEDIATE
    values: dict[str, str] = {}
    for index in range(0, len(words), 2):
        option = words[index].split("=", 1)[0]
        if option not in _OPTIONS or index + 1 >= len(words):
            raise PolicyError(
                f"{words[index]!r:.40}: expected --immediate or {', '.join(_OPTIONS)} VALUE"
            )
        values[_OPTIONS[option]] = words[index + 1]
    return make_policy(**values)  # type: ignore[arg-type]


def policy_to_json(policy: Policy) -> str:
    return json.dumps(policy.to_dict(), sort_keys=True)


def policy_from_json(text: str) -> Policy:
    """The policy a rollout recorded at its start (policy_to_json)."""
    data = json.loads(text)
    if data.get("immediate"):
        return IMMEDIATE
    return make_policy(
        canary=data["canary"],
        waves=data["waves"],
        bake=data["bakeSeconds"],
        max_failures=data["maxFailures"],
        canary_label=data.get("canaryLabel"),
        canary_nodes=data.get("canaryNodes"),
        max_offline=data.get("maxOffline"),
        max_refused=data.get("maxRefused"),
    )


def node_order(bin_name: str, names: Sequence[str], key: bytes) -> list[str]:
    """`names` in the rollout order of `bin_name`: HMAC-SHA256 under the server's `key`, the
    same on every replica; without the key no one can tell which name sorts first."""

    def rank(name: str) -> tuple[bytes, str]:
        digest = hmac.new(key, f"{bin_name}\0{name}".encode(), hashlib.sha256).digest()
        return digest, name

    return sorted(names, key=rank)


def plan_waves(
    bin_name: str, nodes: Mapping[str, Mapping[str, str]], policy: Policy, key: bytes
) -> list[list[str]]:
    """The waves of `nodes` (name → labels), wave 0 the canary, then each share; no empty
    wave. A node's labels: those an admin set as `k`, its own NODE_LABELS as `reported:k`.

    With `--canary-nodes` or `--canary-label` the canary is the members named or labelled
    so; when there is none, the first `--canary` nodes in the order, as without them.
    """
    order = node_order(bin_name, list(nodes), key)
    if not order:
        return []
    if policy.immediate:
        return [order]
    named = set(policy.canary_nodes)
    label = policy.canary_label

    def chosen_one(name: str) -> bool:
        return name in named or (label is not None and nodes[name].get(label[0]) == label[1])

    canary = [name for name in order if chosen_one(name)] if named or label else []
    canary = canary or order[: min(len(order), policy.canary.of(len(order)))]
    chosen = set(canary)
    rest = [name for name in order if name not in chosen]
    waves = [canary]
    done = len(canary)
    for share in policy.waves:
        upto = len(order) if share >= 100 else math.ceil(share * len(order) / 100)
        take = max(0, upto - done)
        if take:
            waves.append(rest[:take])
            rest = rest[take:]
            done += take
    if rest:
        waves.append(rest)
    return waves


def failure_limit(policy: Policy, wave_size: int) -> int:
    """How many failed nodes halt a wave of `wave_size` nodes."""
    return max(1, policy.max_failures.of(wave_size))


def wait_limit(limit: Count | None, wave_size: int) -> int | None:
    """How many offline (or refusing) nodes a wave of `wave_size` may have and still be
    promoted (None: any number); a percentage rounds up, `0` is none at all."""
    return None if limit is None else limit.of(wave_size)
