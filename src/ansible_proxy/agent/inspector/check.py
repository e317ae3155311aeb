"""One `ansible-proxy check` run (docs/inspector.md): measure each service, judge it, and
roll a bad one back one step.

The run holds LOCK_DIR/.inspector.lock (one check at a time) and keeps its memory in the
state file (state.py); a rollback (rollback.py) takes the agent's lock for the binary, so
a check and a run never act on one binary at once; rollback reports wait in the state
file until the API takes them (report.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from ansible_proxy.agent import enrolment
from ansible_proxy.agent.adapters import nodeinfo
from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.inspector.kinds import check_service
from ansible_proxy.agent.inspector.probes import Probes
from ansible_proxy.agent.inspector.report import flush_reports
from ansible_proxy.agent.inspector.rollback import WHY_NOT, fleet_view, roll_back
from ansible_proxy.agent.inspector.state import (
    count_failures,
    failures_so_far,
    is_news,
    state_path,
)
from ansible_proxy.agent.inspector.verdicts import (
    Check,
    Health,
    Outcome,
    Remedy,
    Verdict,
    exit_code,
    judge,
)
from ansible_proxy.agent.manifest import SELF_NAME, ManagedBinary, load_manifest
from ansible_proxy.client import locks
from ansible_proxy.client.api import Api, make_client
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.logs import Log
from ansible_proxy.errors import AnsibleProxyError, ConfigError, RetryableError


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
    news: bool = False  # a person should hear of it, and has not yet (state.is_news)
    image: str = ""  # the repository of an image entry (docs/containers.md)


def run_check(
    cfg: AgentConfig, log: Log, clock: Callable[[], float] = time.time
) -> tuple[list[ServiceResult], int, State]:
    """Check every managed service once; returns the rows, the exit code and the state."""
    if cfg.prometheus_url and not cfg.prometheus_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"PROMETHEUS_URL must be an http:// or https:// URL: {cfg.prometheus_url}"
        )
    load_manifest(cfg.manifest_path)  # bad input: nothing created or changed
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
            cfg.ca_bundle,
            cfg.insecure,
        )
        results = []
        for entry in manifest.binaries:
            row = _inspect_safely(host, probes, state, entry)
            if is_news(state, row.binary, row.version, row.action):
                row = dataclasses.replace(row, news=True)
            results.append(row)
        flush_reports(api, state, log)
    state.set("meta", "lastCheck", clock())
    state.save()
    return results, state


def _inspect_safely(
    host: Host, probes: Probes, state: State, entry: ManagedBinary
) -> ServiceResult:
    try:
        return dataclasses.replace(inspect(host, probes, state, entry), image=entry.image)
    except (AnsibleProxyError, OSError) as exc:
        host.log("error", f"check failed: {exc}", entry.binary_name, entry.version)
        health = Health((Check("process", Outcome.UNKNOWN, str(exc)),))
        return ServiceResult(
            entry.service_name, entry.binary_name, entry.version, health,
            Verdict(Remedy.NONE), "error", str(exc), image=entry.image,
        )  # fmt: skip


def inspect(host: Host, probes: Probes, state: State, entry: ManagedBinary) -> ServiceResult:
    """Check one service, count its failures, and roll it back when it is time."""
    name, log = entry.binary_name, host.log
    if name == SELF_NAME:  # the agent itself: no service to probe; its self-test vets it
        health = Health((Check("process", Outcome.HEALTHY, "the agent itself"),))
        return ServiceResult(
            entry.service_name, name, entry.version, health, Verdict(Remedy.NONE), "none",
            "the agent itself (checked by its self-test before each self-update)",
        )  # fmt: skip
    health = check_service(probes, entry)
    if entry.hold:  # `ansible-proxy hold`: measured and shown, never acted on or counted
        log("debug", f"held ({entry.hold}): {health.outcome}", name, entry.version)
        return ServiceResult(
            entry.service_name, name, entry.version, health, Verdict(Remedy.NONE), "held",
            entry.hold,
        )  # fmt: skip
    withdrawn, pinned = fleet_view(host.state, entry)
    verdict = judge(
        entry,
        health,
        failures_so_far(state, entry),
        host.cfg.check_failures,
        withdrawn,
        pinned,
    )
    count_failures(state, name, entry.version, verdict.failures)

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
        why = WHY_NOT[verdict.remedy]
        log("error", f"unhealthy: {reasons}; {why}", name, entry.version)
        return result(str(verdict.remedy), f"{why}: {reasons}")
    return result(*roll_back(host, state, entry, verdict, reasons))
