"""Pure: a rollout policy, parsed and checked; the waves of a fleet; failure thresholds.

A policy is what `bin-manager rollout set` takes: `--canary N|P%`, `--waves P%,P%,…`
(cumulative shares of the fleet, the last one made 100 % when it is less), `--bake
SECONDS`, `--max-failures N|P%` (of each wave), `--canary-label [reported:]k=v`,
`--canary-nodes a,b`, `--max-offline N|P%` and `--max-refused N|P%` (of each wave: with
more nodes offline, or refusing the release, the wave waits), `--watch DURATION` (how long
a rollout that reached every wave is still judged), `--window 'DAYS HH:MM-HH:MM ZONE'`
(when its waves may start: windows.py); or `--immediate`. Nodes are
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

from ansible_proxy.server.rollouts import windows
from ansible_proxy.server.rollouts.options import (
    MAX_BAKE_SECONDS,
    ONE_NODE,
    format_duration,
    parse_canary_label,
    parse_canary_nodes,
    parse_count,
    parse_duration,
    parse_limit,
    parse_waves,
)
from ansible_proxy.server.rollouts.options import (
    Count as Count,  # re-exported: the policy's callers name them from here
)
from ansible_proxy.server.rollouts.options import (
    PolicyError as PolicyError,
)
from ansible_proxy.server.rollouts.windows import Window


@dataclass(frozen=True)
class Policy:
    """How a bin's new releases reach its nodes; `immediate`: all at once, as before."""

    immediate: bool
    canary: Count = ONE_NODE
    waves: tuple[int, ...] = (100,)
    bake_seconds: int = 0
    max_failures: Count = ONE_NODE
    canary_label: tuple[str, str] | None = None  # the key is "reported:k" for NODE_LABELS
    canary_nodes: tuple[str, ...] = ()
    # More offline (or refusing) members than this in a wave: it waits (None: no limit).
    max_offline: Count | None = None
    max_refused: Count | None = None
    watch_seconds: int = 0  # after the last wave: still judged this long (heard clock)
    windows: tuple[Window, ...] = ()  # when its waves may start (windows.py); (): any time

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
            "watchSeconds": self.watch_seconds,
            "windows": windows.describe(self.windows) or None,
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
        if self.watch_seconds:
            text += f" --watch {format_duration(self.watch_seconds)}"
        if self.windows:
            text += f" --window {shlex.quote(windows.describe(self.windows))}"
        return text


IMMEDIATE = Policy(immediate=True)


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
    watch: int | str | None = None,
    window: str | None = None,
) -> Policy:
    """A checked policy from `rollout set`'s option values (the first four required unless
    immediate; `watch`: seconds, or a duration like `1h`)."""
    staged = {"--canary": canary, "--waves": waves, "--bake": bake, "--max-failures": max_failures}
    if immediate:
        given = [name for name, value in staged.items() if value is not None]
        optional = {
            "--canary-label": canary_label,
            "--canary-nodes": canary_nodes,
            "--max-offline": max_offline,
            "--max-refused": max_refused,
            "--watch": watch,
            "--window": window,
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
        max_offline=parse_limit(max_offline, "--max-offline"),
        max_refused=parse_limit(max_refused, "--max-refused"),
        watch_seconds=0 if watch is None else parse_duration(watch, "--watch"),
        windows=windows.parse_windows(window) if window else (),
    )


_OPTIONS = {
    "--canary": "canary",
    "--waves": "waves",
    "--bake": "bake",
    "--max-failures": "max_failures",
    "--canary-label": "canary_label",
    "--canary-nodes": "canary_nodes",
    "--max-offline": "max_offline",
    "--max-refused": "max_refused",
    "--watch": "watch",
    "--window": "window",
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
        watch=data.get("watchSeconds") or None,
        window=data.get("windows"),
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
