"""`ansible-proxy status`: the last tick (when, how it ended, whether one was missed:
last_tick.py) and one row per managed binary (an image entry's row names its
repository), from the manifest and state file; or all of it as JSON (`--json`)."""

from __future__ import annotations

import json
import time
from typing import Any

from ansible_proxy.agent import last_tick, plan
from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.manifest import ManagedBinary, load_manifest
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.table import render_table

COLUMNS = ("BINARY", "SERVICE", "INSTALLED", "LATEST SEEN", "LAST RESULT", "ROLLBACK TO", "HOLD")


def _short(sha: str) -> str:
    return sha[:12] if sha else "-"


def _rollback(entry: ManagedBinary, state: State) -> tuple[str, str]:
    """What the inspector would roll back to, and why not ("" when it would): pinned,
    withdrawn or bad."""
    raw = state.get("withdrawn", entry.binary_name)
    withdrawn = {s for s in raw if isinstance(s, str)} if isinstance(raw, list) else set()
    if withdrawn and state.get("latest", entry.binary_name) == entry.version:
        return "", "pinned"
    target = plan.rollback_target(entry)
    if target and not plan.usable_rollback_target(entry, withdrawn):
        return target, "withdrawn" if target in withdrawn else "bad"
    return target, ""


def render_status(cfg: AgentConfig) -> str:
    """The last tick's line, then a plain-text table (no API call: what this host knows)."""
    tick = last_tick.describe(last_tick.load(cfg.store_dir), time.time())
    return f"{tick}\n" + render_table(COLUMNS, [_row(b) for b in _binaries(cfg)])


def as_json(cfg: AgentConfig) -> str:
    """`status --json`: the same, full sha256s, for scripts and monitoring."""
    tick = last_tick.load(cfg.store_dir)
    doc = {
        "lastTick": tick.to_json(time.time()) if tick else None,
        "binaries": _binaries(cfg),
    }
    return json.dumps(doc, indent=2) + "\n"


def _binaries(cfg: AgentConfig) -> list[dict[str, Any]]:
    manifest = load_manifest(cfg.manifest_path)
    state = State(cfg.store_dir / ".state.json")
    found = []
    for entry in manifest.binaries:
        latest = state.get("latest", entry.binary_name)
        last = list(entry.history.items())[-1] if entry.history else ("", "")
        target, why_not = _rollback(entry, state)
        found.append(
            {
                "binary": entry.binary_name,
                "image": entry.image or None,
                "service": entry.service_name,
                "installed": entry.version,
                "latestSeen": latest if isinstance(latest, str) else "",
                "lastTried": last[0],
                "lastResult": (last[1] or "pending") if last[0] else "",
                "rollbackTo": target,
                "noRollback": why_not or None,
                "hold": entry.hold or None,
            }
        )
    return found


def _row(found: dict[str, Any]) -> tuple[str, ...]:
    name = found["binary"]
    return (
        f"{name} ({found['image']})" if found["image"] else name,
        found["service"],
        _short(found["installed"]),
        _short(found["latestSeen"]),
        f"{found['lastResult']} ({_short(found['lastTried'])})" if found["lastTried"] else "-",
        _rollback_cell(found["rollbackTo"], found["noRollback"]),
        found["hold"] or "-",
    )


def _rollback_cell(target: str, why_not: str | None) -> str:
    if why_not == "pinned":
        return "- (pinned)"
    if why_not:
        return f"- ({_short(target)} {why_not})"
    return _short(target)
