"""What `ansible-proxy check` shows: a table, JSON, and node_exporter textfile metrics.

All three follow kinds.KINDS: the table has a column for each kind (its `column`), and
the JSON's `checks` and the textfile's `ansible_proxy_check_healthy` give every check
measured under its kind's name. `check_command` wires the inspector for cli.py: log,
run, print, textfile, exit code.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.inspector.check import ServiceResult, run_check
from ansible_proxy.agent.inspector.kinds import KINDS
from ansible_proxy.agent.inspector.state import rollbacks
from ansible_proxy.agent.inspector.verdicts import Outcome
from ansible_proxy.client import table
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.files import write_atomic
from ansible_proxy.client.logs import Log, stderr_if_terminal
from ansible_proxy.errors import EXIT_RETRY, AnsibleProxyError, ConfigError

_GAUGE = {Outcome.HEALTHY: 1, Outcome.UNHEALTHY: 0, Outcome.UNKNOWN: -1, Outcome.STOPPED: 2}


def as_dict(result: ServiceResult) -> dict[str, Any]:
    return {
        "service": result.service,
        "binary": result.binary,
        "image": result.image or None,
        "version": result.version,
        "outcome": str(result.health.outcome),
        "checks": {
            c.name: {"outcome": str(c.outcome), "detail": c.detail} for c in result.health.checks
        },
        "runningImage": _running(result),
        "failures": result.verdict.failures,
        "action": result.action,
        "rollbackTo": result.verdict.target,
        "detail": result.detail,
    }


def _running(result: ServiceResult) -> dict[str, Any] | None:
    """Which image an image entry's container runs (as measured), or None."""
    seen = result.health.running
    if seen is None:
        return None
    releases = seen.releases
    return {
        "container": seen.container,
        "id": seen.image_id or None,
        "release": result.version if result.version in releases else next(iter(releases), None),
        "tag": seen.tag or None,
    }


def render_json(results: Sequence[ServiceResult], code: int) -> str:
    return json.dumps({"services": [as_dict(r) for r in results], "exitCode": code}, indent=2)


def render_table(results: Sequence[ServiceResult]) -> str:
    """One row per service: each check's result, the outcome, and the action taken."""
    rows = []
    for r in results:
        checks = {c.name: c for c in r.health.checks}
        cells = [
            f"{checks[k.name].outcome}: {checks[k.name].detail}" if k.name in checks else "-"
            for k in KINDS
        ]
        action = r.action if not r.detail or r.action == "none" else f"{r.action}: {r.detail}"
        service = f"{r.service} ({r.image})" if r.image else r.service
        rows.append((service, r.version[:12] or "-", *cells, str(r.health.outcome), action))
    header = ("SERVICE", "VERSION", *(k.column for k in KINDS), "RESULT", "ACTION")
    return table.render_table(header, rows)


def render_textfile(results: Sequence[ServiceResult], state: State, now: float) -> str:
    """node_exporter textfile format; healthy 1, unhealthy 0, unknown -1, stopped 2."""
    lines = [
        "# HELP ansible_proxy_service_healthy 1 healthy, 0 unhealthy, -1 unknown, 2 stopped "
        "by an operator (last check).",
        "# TYPE ansible_proxy_service_healthy gauge",
    ]
    lines += [
        f"ansible_proxy_service_healthy{{service={_label(r.service)}}} {_GAUGE[r.health.outcome]}"
        for r in results
    ]
    lines += [
        "# HELP ansible_proxy_check_healthy One check of a service (last check): 1 healthy, "
        "0 unhealthy, -1 unknown, 2 stopped by an operator.",
        "# TYPE ansible_proxy_check_healthy gauge",
    ]
    lines += [
        f"ansible_proxy_check_healthy{{service={_label(r.service)},check={_label(c.name)}}} "
        f"{_GAUGE[c.outcome]}"
        for r in results
        for c in r.health.checks
    ]
    lines += [
        "# HELP ansible_proxy_rollbacks_total Rollbacks done by the inspector on this host.",
        "# TYPE ansible_proxy_rollbacks_total counter",
    ]
    for r in results:
        value = rollbacks(state, r.service)
        lines.append(f"ansible_proxy_rollbacks_total{{service={_label(r.service)}}} {value}")
    lines += [
        "# HELP ansible_proxy_last_check_timestamp_seconds When the last check finished.",
        "# TYPE ansible_proxy_last_check_timestamp_seconds gauge",
        f"ansible_proxy_last_check_timestamp_seconds {_number(now)}",
    ]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{escaped}"'


def _number(value: float) -> str:
    return repr(value) if math.isfinite(value) else "NaN"


def check_command(
    cfg: AgentConfig, as_json: bool, textfile: Path | None, log_format: str, verbose: bool
) -> tuple[str, int]:
    """Run one check; returns (what to print, exit code)."""
    if textfile is not None and not textfile.parent.is_dir():
        raise ConfigError(f"--textfile {textfile}: directory {textfile.parent} does not exist")
    echo = sys.stderr if verbose else stderr_if_terminal()  # -v: also off a terminal
    log = Log(cfg.log_file, log_format, echo, "debug" if verbose else "info")
    try:
        results, code, state = run_check(cfg, log)
        if textfile is not None:
            write_atomic(textfile, render_textfile(results, state, time.time()).encode(), 0o644)
    except AnsibleProxyError as exc:
        log("warning" if exc.exit_code == EXIT_RETRY else "error", str(exc))
        raise
    finally:
        log.close()
    if echo is None:  # cron: one line per service a person should hear of (the log has all)
        for r in results:
            if r.news:
                line = f"{r.service}@{r.version[:12]}: {r.action}: {r.detail}"
                print(f"ansible-proxy check: {line}", file=sys.stderr)
    return (render_json(results, code) + "\n" if as_json else render_table(results)), code
