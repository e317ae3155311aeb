"""`ansible-proxy status`: one row per managed binary (an image entry's row names its
repository), from the manifest and state file."""

from __future__ import annotations

from ansible_proxy.agent import plan
from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.manifest import ManagedBinary, load_manifest
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.table import render_table

COLUMNS = ("BINARY", "SERVICE", "INSTALLED", "LATEST SEEN", "LAST RESULT", "ROLLBACK TO", "HOLD")


def _short(sha: str) -> str:
    return sha[:12] if sha else "-"


def last_result(entry: ManagedBinary) -> str:
    """The result of the most recent version handled (the last key of history)."""
    if not entry.history:
        return "-"
    sha, result = list(entry.history.items())[-1]
    return f"{result or 'pending'} ({_short(sha)})"


def _rollback_cell(entry: ManagedBinary, state: State) -> str:
    """What the inspector would roll back to, or why nothing (pinned, withdrawn, bad)."""
    raw = state.get("withdrawn", entry.binary_name)
    withdrawn = {s for s in raw if isinstance(s, str)} if isinstance(raw, list) else set()
    if withdrawn and state.get("latest", entry.binary_name) == entry.version:
        return "- (pinned)"
    target = plan.rollback_target(entry)
    if target and not plan.usable_rollback_target(entry, withdrawn):
        why = "withdrawn" if target in withdrawn else "bad"
        return f"- ({_short(target)} {why})"
    return _short(target)


def render_status(cfg: AgentConfig) -> str:
    """A plain-text table (no API call: it shows what this host knows)."""
    manifest = load_manifest(cfg.manifest_path)
    state = State(cfg.store_dir / ".state.json")
    rows = []
    for entry in manifest.binaries:
        latest = state.get("latest", entry.binary_name)
        rows.append(
            (
                f"{entry.binary_name} ({entry.image})" if entry.image else entry.binary_name,
                entry.service_name,
                _short(entry.version),
                _short(latest if isinstance(latest, str) else ""),
                last_result(entry),
                _rollback_cell(entry, state),
                entry.hold or "-",
            )
        )
    return render_table(COLUMNS, rows)
