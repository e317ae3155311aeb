"""The inspector's measurements for one service: process, port, image, Prometheus alerts.

Each check returns a `Check`; nothing here decides or changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ansible_proxy.agent.adapters.prometheus import query_alerts, render_query
from ansible_proxy.agent.adapters.supervisor import (
    NoSuchProgram,
    Supervisor,
    SupervisorHung,
    port_open,
)
from ansible_proxy.agent.inspector.verdicts import Check, Health, Outcome
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client.processes import running_named
from ansible_proxy.errors import ConfigError, DeployError, RetryableError

if TYPE_CHECKING:
    from ansible_proxy.agent.adapters.engine import Engine, RunningImage
    from ansible_proxy.client.transport import Client

PORT_TIMEOUT = 1.0
_FATAL = "FATAL"
_STOPPED = "STOPPED"


@dataclass(frozen=True)
class Probes:
    """The outside things the checks talk to, built once by the inspector."""

    supervisor: Supervisor
    http: Client
    prometheus_url: str
    prometheus_query: str
    prometheus_timeout: float = 3.0
    engine: Callable[[], Engine] | None = None  # made on first use: image entries only


def check_service(probes: Probes, entry: ManagedBinary, query: str | None) -> Health:
    """Every applicable check of one service; `query` overrides PROMETHEUS_QUERY."""
    process, fatal, supervised = check_process(probes.supervisor, entry)
    if process.outcome == Outcome.STOPPED:  # its port and alerts say nothing now
        return Health((process,), supervised=supervised)
    checks = [process]
    if entry.port is not None:
        checks.append(check_port(probes.supervisor.service_host, entry.port))
    running = None
    if entry.image and probes.engine is not None:
        image, running = check_image(probes.engine, entry)
        checks.append(image)
    if probes.prometheus_url:
        template = query or probes.prometheus_query
        checks.append(check_alerts(probes, render_query(template, entry.service_name)))
    return Health(tuple(checks), fatal=fatal, supervised=supervised, running=running)


def check_process(sup: Supervisor, entry: ManagedBinary) -> tuple[Check, bool, bool]:
    """(check, FATAL?, a supervisor program?): supervisor state, else a process by name.

    A supervisord that is there but will not answer (hung, or its socket is not ours to
    open) is "unknown": a process found by name says nothing about the program's state.
    Only when no supervisord runs at all is the process looked for by name.
    """
    try:
        info = sup.info(entry.service_name)
    except NoSuchProgram:
        return _by_name(entry, "no supervisor program"), False, False
    except DeployError as exc:
        return Check("process", Outcome.UNKNOWN, str(exc)), False, True
    except (ConfigError, SupervisorHung) as exc:
        return Check("process", Outcome.UNKNOWN, str(exc)), False, True
    except RetryableError as exc:  # no supervisord listening: look for the process itself
        return _by_name(entry, str(exc)), False, False
    if info.state == "RUNNING":
        return Check("process", Outcome.HEALTHY, f"RUNNING pid {info.pid}"), False, True
    if info.state == _STOPPED:
        return Check("process", Outcome.STOPPED, "STOPPED (supervisorctl stop)"), False, True
    detail = info.state + (f" ({info.spawnerr})" if info.spawnerr else "")
    return Check("process", Outcome.UNHEALTHY, detail), info.state == _FATAL, True


def _by_name(entry: ManagedBinary, why: str) -> Check:
    pid = running_named(tuple({entry.service_name, entry.binary_name}))
    if pid is None:
        return Check("process", Outcome.UNHEALTHY, f"{why}; no process named {entry.service_name}")
    return Check("process", Outcome.HEALTHY, f"{why}; process pid {pid}")


def check_port(host: str, port: int) -> Check:
    if port_open(host, port, timeout=PORT_TIMEOUT):
        return Check("port", Outcome.HEALTHY, f"{port} accepts connections")
    return Check("port", Outcome.UNHEALTHY, f"{port} refuses connections")


def check_image(
    engine: Callable[[], Engine], entry: ManagedBinary
) -> tuple[Check, RunningImage | None]:
    """Which image the entry's container runs: unhealthy unless the installed release's
    (docs/containers.md); unknown when the engine does not answer."""
    try:
        seen = engine().running(entry.container_name, entry.image)
    except (ConfigError, RetryableError) as exc:
        return Check("image", Outcome.UNKNOWN, str(exc)), None
    reason = seen.refusal(entry.version)
    if not reason:
        return Check("image", Outcome.HEALTHY, f"runs {seen.describe(entry.version)}"), seen
    if seen.image_id and not entry.version:  # nothing installed to compare with
        return Check("image", Outcome.HEALTHY, f"runs {seen.describe()}"), seen
    return Check("image", Outcome.UNHEALTHY, reason), seen


def check_alerts(probes: Probes, query: str) -> Check:
    answer = query_alerts(probes.http, probes.prometheus_url, query, probes.prometheus_timeout)
    if answer.firing is None:
        return Check("alerts", Outcome.UNKNOWN, answer.detail)
    outcome = Outcome.UNHEALTHY if answer.firing else Outcome.HEALTHY
    return Check("alerts", outcome, answer.detail)
