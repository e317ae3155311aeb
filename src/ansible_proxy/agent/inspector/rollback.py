"""The inspector's rollback: one step back along `upgradePath`, under the agent's lock for
the binary, with the same `switch_binary` the agent uses; and what the agent's last poll
said of pins and withdrawn releases, which decide whether a rollback may happen at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_proxy.agent import plan
from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.inspector.report import queue_report
from ansible_proxy.agent.inspector.state import count_failures, count_rollback
from ansible_proxy.agent.inspector.verdicts import Remedy, Verdict
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.agent.switch import switch_binary
from ansible_proxy.client import causes, history, locks
from ansible_proxy.errors import AnsibleProxyError

# Why an unhealthy service is not rolled back, by the verdict's remedy (the row's detail).
WHY_NOT: Mapping[Remedy, str] = {
    Remedy.NOT_INSTALLED: "not installed by the agent yet: nothing to roll back",
    Remedy.NO_PATH: "never upgraded by the agent: no rollback path, left untouched",
    Remedy.ALREADY_ROLLED_BACK: "already rolled back to this version once: left for a person",
    Remedy.TARGET_BAD: "the previous version is known bad too: left for a person",
    Remedy.NOT_SUPERVISED: "not a supervisor program: cannot restart it, left untouched",
    Remedy.PINNED: "the bin-manager pinned this release fleet-wide: left for a person",
    Remedy.TARGET_WITHDRAWN: "the previous release was withdrawn by the bin-manager "
    "(pinned away from): left for a person",
}


def fleet_view(agent_state: State, entry: ManagedBinary) -> tuple[frozenset[str], bool]:
    """(withdrawn releases, is the installed one pinned) as the agent's last poll saw them.

    Read from the agent's state file (STORE_DIR/.state.json), so no API call is needed:
    a pin is in force when the bin-manager withdrew newer releases and its latest is the
    version installed here.
    """
    raw = agent_state.get("withdrawn", entry.binary_name)
    withdrawn = (
        frozenset(s for s in raw if isinstance(s, str)) if isinstance(raw, list) else frozenset()
    )
    latest = agent_state.get("latest", entry.binary_name)
    return withdrawn, bool(withdrawn) and latest == entry.version


def roll_back(
    host: Host, state: State, entry: ManagedBinary, verdict: Verdict, reasons: str
) -> tuple[str, str]:
    """One step back to `verdict.target`; returns the row's (action, detail)."""
    cfg, name, bad, target = host.cfg, entry.binary_name, entry.version, verdict.target
    busy = "an agent run holds this binary's lock: left to it"
    if locks.held_by_other(cfg.lock_dir, name):
        host.log("info", busy, name, bad)
        return "busy", busy
    held = locks.acquire(cfg.lock_dir, name, bad, cfg.lock_timeout, host.clock)
    if held is None:
        host.log("info", busy, name, bad)
        return "busy", busy
    try:
        fresh = host.entry(name, fresh=True)
        # Measured before the lock: if a run touched this binary since, its picture is stale.
        if fresh != entry or plan.pending_target(fresh):
            changed = "the manifest changed meanwhile (an agent run): left to it"
            host.log("info", changed, name, bad)
            return "busy", changed
        if not host.store.has(name, target):
            missing = f"previous version {target[:12]} is not in the store: cannot roll back"
            host.log("error", missing, name, bad)
            return "rollback-impossible", missing
        host.log("warning", f"unhealthy: {reasons}; rolling back", name, bad)
        # Manifest first: if we die now, the agent's next run restores `target` itself.
        host.update_manifest(
            name,
            version=target,
            previous_version=fresh.upgrade_path.get(target, ""),
            history={bad: history.ERR},
        )
        try:
            still = switch_binary(host.switch_context(), fresh, target, None)
        except AnsibleProxyError as exc:  # recorded already: the agent's next run restores it
            still = str(exc)
        seconds = plan.processing_time(host.clock(), held.created)
    finally:
        held.release()
    count_failures(state, name, target, 0)
    count_rollback(state, entry.service_name)
    queue_report(
        state, name, bad, target, seconds, f"inspector: {reasons}", causes.INSPECTOR_VERDICT
    )
    if still:
        host.log("error", f"rolled back but still unhealthy: {still}", name, target)
        return "rolled-back", f"to {target[:12]}, still unhealthy: {still}"
    host.log("info", "rolled back: previous version running", name, target)
    return "rolled-back", f"to {target[:12]}: {reasons}"
