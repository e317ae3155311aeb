"""`ansible-proxy check` (docs/inspector.md): check each service, roll a bad one back a step.

Consecutive failures, rollback counts and reports the API has not taken yet live in a
small state file beside the store (STORE_DIR/../inspector-state.json). A rollback
takes the agent's per-binary lock, so a check and a run never act on one binary at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_proxy.agent import enrolment, plan
from ansible_proxy.agent.adapters import nodeinfo
from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.inspector.probes import Probes, check_service
from ansible_proxy.agent.inspector.verdicts import (
    Check,
    Health,
    Outcome,
    Remedy,
    Verdict,
    exit_code,
    judge,
)
from ansible_proxy.agent.manifest import SELF_NAME, ManagedBinary, Manifest, load_manifest
from ansible_proxy.agent.switch import switch_binary
from ansible_proxy.client import causes, history, locks
from ansible_proxy.client.api import Api, make_client
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.logs import Log
from ansible_proxy.errors import AnsibleProxyError, ConfigError, RetryableError

STATE_NAME = "inspector-state.json"
QUERY_KEY = "prometheusQuery"  # optional per-entry override of PROMETHEUS_QUERY


@dataclass(frozen=True)
class ServiceResult:
    """One row of the report: what was measured, decided and done."""

    service: str
    binary: str
    version: str
    health: Health
    verdict: Verdict
    action: str  # what was actually done (may differ from verdict: busy, failed)
    detail: str = ""
    news: bool = False  # a person should hear of it, and has not yet (see `tell_once`)
    image: str = ""  # the repository of an image entry (docs/containers.md)


def state_path(cfg: AgentConfig) -> Path:
    """Beside the store: /var/lib/ansible-proxy/inspector-state.json by default."""
    return cfg.store_dir.parent / STATE_NAME


def entry_queries(manifest: Manifest) -> dict[str, str]:
    """binaryName -> its `prometheusQuery` override, for entries that have one."""
    queries: dict[str, str] = {}
    # Python 3.9 has no zip(strict=): the manifest model holds one entry per document entry.
    for index, (entry, raw) in enumerate(zip(manifest.binaries, manifest.doc["binaries"])):
        value = raw.get(QUERY_KEY)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            where = f"manifest {manifest.path}: binaries[{index}]"
            raise ConfigError(f"{where}: {QUERY_KEY} must be a non-empty string")
        queries[entry.binary_name] = value
    return queries


def run_check(
    cfg: AgentConfig, log: Log, clock: Callable[[], float] = time.time
) -> tuple[list[ServiceResult], int, State]:
    """Check every managed service once; returns the rows, the exit code and the state."""
    if cfg.prometheus_url and not cfg.prometheus_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"PROMETHEUS_URL must be an http:// or https:// URL: {cfg.prometheus_url}"
        )
    entry_queries(load_manifest(cfg.manifest_path))  # bad input: nothing created or changed
    try:
        cfg.lock_dir.mkdir(parents=True, exist_ok=True)
        state_path(cfg).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"LOCK_DIR/STORE_DIR: cannot create: {exc}") from None
    # One check at a time: overlapping cron runs would each save their own state file.
    # Never wait for it: a check that waits piles up behind a slow one, minute by minute.
    with locks.exclusive(cfg.lock_dir / ".inspector.lock", wait=False) as mine:
        if not mine:
            raise RetryableError(
                f"another ansible-proxy check holds {cfg.lock_dir / '.inspector.lock'}: "
                "skipped this time"
            )
        results, state = _check_all(cfg, log, clock)
    rolled_back = any(r.action == "rolled-back" for r in results)
    return results, exit_code((r.health.outcome for r in results), rolled_back), state


def _check_all(
    cfg: AgentConfig, log: Log, clock: Callable[[], float]
) -> tuple[list[ServiceResult], State]:
    manifest = load_manifest(cfg.manifest_path)  # read again under the lock: current
    queries = entry_queries(manifest)
    state = State(state_path(cfg))
    api_client = make_client([cfg.api], cfg.token, cfg.ca_bundle, cfg.insecure, cfg.http_timeout)
    prom_urls = [cfg.prometheus_url] if cfg.prometheus_url else ["http://127.0.0.1"]
    # No bearer token for Prometheus: the bin-manager's token is not its business.
    prom_client = make_client(prom_urls, "", cfg.ca_bundle, cfg.insecure, cfg.prometheus_timeout)
    with api_client, prom_client:
        api = Api(api_client, cfg.api, cfg.node_name, nodeinfo.cpu_arch())
        host = Host(cfg, api, log, clock=clock)
        enrolment.use_saved(host)  # the node's own token once a tick enrolled it
        probes = Probes(
            host.supervisor,
            prom_client,
            cfg.prometheus_url,
            cfg.prometheus_query,
            cfg.prometheus_timeout,
            lambda: host.engine,
        )
        results = [
            tell_once(
                state, _inspect_safely(host, probes, state, entry, queries.get(entry.binary_name))
            )
            for entry in manifest.binaries
        ]
        flush_reports(api, state, log)
    state.set("meta", "lastCheck", clock())
    state.save()
    return results, state


# Actions a person should hear of: a rollback (an event, every time), and the verdicts that
# leave an unhealthy service to a person, once per (binary, version, action): cron mails
# the news, not the same line every minute while nobody has acted yet.
TOLD_ACTIONS = frozenset(
    {
        "rolled-back",
        "rollback-impossible",
        "left-for-a-person",
        "target-known-bad",
        "target-withdrawn",
        "pinned",
        "no-rollback-path",
        "not-supervised",
    }
)


def tell_once(state: State, result: ServiceResult) -> ServiceResult:
    """`result`, marked as news when a person has not been told of it yet."""
    if result.action not in TOLD_ACTIONS:
        return result
    key = f"{result.version}:{result.action}"
    if result.action != "rolled-back" and state.get("told", result.binary) == key:
        return result
    state.set("told", result.binary, key)
    return dataclasses.replace(result, news=True)


def _inspect_safely(
    host: Host, probes: Probes, state: State, entry: ManagedBinary, query: str | None
) -> ServiceResult:
    try:
        return dataclasses.replace(inspect(host, probes, state, entry, query), image=entry.image)
    except (AnsibleProxyError, OSError) as exc:
        host.log("error", f"check failed: {exc}", entry.binary_name, entry.version)
        health = Health((Check("process", Outcome.UNKNOWN, str(exc)),))
        return ServiceResult(
            entry.service_name, entry.binary_name, entry.version, health,
            Verdict(Remedy.NONE), "error", str(exc), image=entry.image,
        )  # fmt: skip


def inspect(
    host: Host, probes: Probes, state: State, entry: ManagedBinary, query: str | None
) -> ServiceResult:
    """Check one service, count its failures, and roll it back when it is time."""
    name, log = entry.binary_name, host.log
    if name == SELF_NAME:  # the agent itself: no service to probe; its self-test vets it
        health = Health((Check("process", Outcome.HEALTHY, "the agent itself"),))
        return ServiceResult(
            entry.service_name, name, entry.version, health, Verdict(Remedy.NONE), "none",
            "the agent itself (checked by its self-test before each self-update)",
        )  # fmt: skip
    health = check_service(probes, entry, query)
    if entry.hold:  # `ansible-proxy hold`: measured and shown, never acted on or counted
        log("debug", f"held ({entry.hold}): {health.outcome}", name, entry.version)
        return ServiceResult(
            entry.service_name, name, entry.version, health, Verdict(Remedy.NONE), "held",
            entry.hold,
        )  # fmt: skip
    failures = state.get("failures", name)
    if state.get("counted", name) != entry.version:  # a new version starts a new count
        failures = 0
    withdrawn, pinned = fleet_view(host.state, entry)
    verdict = judge(
        entry,
        health,
        failures if isinstance(failures, int) else 0,
        host.cfg.check_failures,
        withdrawn,
        pinned,
    )
    state.set("failures", name, verdict.failures)
    state.set("counted", name, entry.version)

    def result(action: str, detail: str = "") -> ServiceResult:
        return ServiceResult(
            entry.service_name, name, entry.version, health, verdict, action, detail
        )

    reasons = health.reasons()
    if health.outcome == Outcome.STOPPED:
        log("info", "stopped (supervisor STOPPED): left alone", name, entry.version)
        return result("stopped", "stopped by an operator")
    if verdict.remedy == Remedy.NONE:
        if reasons:
            log("warning", f"cannot tell: {reasons}", name, entry.version)
        else:
            log("debug", "healthy", name, entry.version)
        return result("none", reasons)
    count = f"{verdict.failures}/{host.cfg.check_failures}"
    if verdict.remedy == Remedy.WAIT:
        log("warning", f"unhealthy ({count}): {reasons}", name, entry.version)
        return result("wait", f"unhealthy {count}: {reasons}")
    if verdict.remedy != Remedy.ROLL_BACK:
        why = _WHY[verdict.remedy]
        log("error", f"unhealthy: {reasons}; {why}", name, entry.version)
        return result(str(verdict.remedy), f"{why}: {reasons}")
    return _roll_back(host, state, entry, verdict, reasons, result)


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


_WHY: Mapping[Remedy, str] = {
    Remedy.NOT_INSTALLED: "not installed by the agent yet: nothing to roll back",
    Remedy.NO_PATH: "never upgraded by the agent: no rollback path, left untouched",
    Remedy.ALREADY_ROLLED_BACK: "already rolled back to this version once: left for a person",
    Remedy.TARGET_BAD: "the previous version is known bad too: left for a person",
    Remedy.NOT_SUPERVISED: "not a supervisor program: cannot restart it, left untouched",
    Remedy.PINNED: "the bin-manager pinned this release fleet-wide: left for a person",
    Remedy.TARGET_WITHDRAWN: "the previous release was withdrawn by the bin-manager "
    "(pinned away from): left for a person",
}


def _roll_back(
    host: Host,
    state: State,
    entry: ManagedBinary,
    verdict: Verdict,
    reasons: str,
    result: Callable[[str, str], ServiceResult],
) -> ServiceResult:
    """One step back along upgradePath, under the agent's lock for this binary."""
    cfg, name, bad, target = host.cfg, entry.binary_name, entry.version, verdict.target
    busy = "an agent run holds this binary's lock: left to it"
    if locks.held_by_other(cfg.lock_dir, name):
        host.log("info", busy, name, bad)
        return result("busy", busy)
    held = locks.acquire(cfg.lock_dir, name, bad, cfg.lock_timeout, host.clock)
    if held is None:
        host.log("info", busy, name, bad)
        return result("busy", busy)
    try:
        fresh = host.entry(name, fresh=True)
        # Measured before the lock: if a run touched this binary since, its picture is stale.
        if fresh != entry or plan.pending_target(fresh):
            changed = "the manifest changed meanwhile (an agent run): left to it"
            host.log("info", changed, name, bad)
            return result("busy", changed)
        if not host.store.has(name, target):
            missing = f"previous version {target[:12]} is not in the store: cannot roll back"
            host.log("error", missing, name, bad)
            return result("rollback-impossible", missing)
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
    state.set("failures", name, 0)
    state.set("counted", name, target)
    rollbacks = state.get("rollbacks", entry.service_name)
    state.set("rollbacks", entry.service_name, (rollbacks if isinstance(rollbacks, int) else 0) + 1)
    queue_report(
        state, name, bad, target, seconds, f"inspector: {reasons}", causes.INSPECTOR_VERDICT
    )
    if still:
        host.log("error", f"rolled back but still unhealthy: {still}", name, target)
        return result("rolled-back", f"to {target[:12]}, still unhealthy: {still}")
    host.log("info", "rolled back: previous version running", name, target)
    return result("rolled-back", f"to {target[:12]}: {reasons}")


def queue_report(
    state: State,
    name: str,
    bad: str,
    running: str,
    seconds: int,
    reason: str = "",
    cause: str = causes.INSPECTOR_VERDICT,
) -> None:
    """Remember a rollback to report (sent now, or by a later run when the API is back)."""
    pending = state.get("pending", name)
    items: list[Any] = list(pending) if isinstance(pending, list) else []
    items.append(
        {"bad": bad, "running": running, "seconds": seconds, "reason": reason, "cause": cause}
    )
    state.set("pending", name, items)


def flush_reports(api: Api, state: State, log: Log) -> None:
    """Send queued rollback reports: progress `failed` for the bad sha, POST /bins."""
    pending = state.data.get("pending")
    if not isinstance(pending, dict):
        return
    for name in list(pending):
        items = pending[name] if isinstance(pending[name], list) else []
        while items:
            item = items[0]
            try:
                if not item.get("progressSent"):
                    api.report_progress(
                        name,
                        item["bad"],
                        int(item["seconds"]),
                        "failed",
                        str(item.get("reason") or ""),
                        # queued by an older agent without it: an inspector's verdict too
                        str(item.get("cause") or causes.INSPECTOR_VERDICT),
                    )
                    item["progressSent"] = True
                    state.dirty = True
                api.report_bin(name, item["running"])
            except RetryableError as exc:
                log("warning", f"rollback report not sent (retried next run): {exc}", name)
                return
            except (KeyError, TypeError, ValueError):
                log("warning", f"dropping a malformed queued report: {item!r:.80}", name)
            items.pop(0)
            state.dirty = True
            log("info", "rollback reported to the bin-manager", name, str(item.get("bad", "")))
        del pending[name]
        state.dirty = True
