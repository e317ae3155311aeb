"""The inspector's measurements of one service: process, port, HTTP, image, alerts.

Each probe takes the `Probes` and a manifest entry and returns what it measured as a
`Health` holding one `Check` (with what else it learned: FATAL, supervised, the running
image), or None when its kind does not apply to the entry. `kinds.py` lists them; nothing
here decides or changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
from ansible_proxy.client.http_probe import DEFAULT_SECONDS, probe_http
from ansible_proxy.client.processes import running_named
from ansible_proxy.errors import ConfigError, DeployError, RetryableError

if TYPE_CHECKING:
    from ansible_proxy.agent.adapters.engine import Engine, RunningImage
    from ansible_proxy.client.transport import Client

PORT_TIMEOUT = 1.0
HTTP_SECONDS = DEFAULT_SECONDS  # a healthUrl's whole GET
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
    ca_bundle: Path | None = None  # for an https:// healthUrl, as for the API
    insecure: bool = False


def probe_process(probes: Probes, entry: ManagedBinary) -> Health:
    """Always measured, and first: a STOPPED program's other checks say nothing now."""
    check, fatal, supervised = check_process(probes.supervisor, entry)
    return Health((check,), fatal=fatal, supervised=supervised)


def probe_port(probes: Probes, entry: ManagedBinary) -> Health | None:
    if entry.port is None:
        return None
    return Health((check_port(probes.supervisor.service_host, entry.port),))


def probe_http_url(probes: Probes, entry: ManagedBinary) -> Health | None:
    """The entry's healthUrl (`{host}`: the host the port check uses) answers 2xx."""
    if not entry.health_url:
        return None
    host = probes.supervisor.service_host
    url = entry.health_url.replace("{host}", f"[{host}]" if ":" in host else host)
    return Health((check_http(url, probes.ca_bundle, probes.insecure),))


def probe_image(probes: Probes, entry: ManagedBinary) -> Health | None:
    if not entry.image or probes.engine is None:
        return None
    check, running = check_image(probes.engine, entry)
    return Health((check,), running=running)


def probe_alerts(probes: Probes, entry: ManagedBinary) -> Health | None:
    """PROMETHEUS_QUERY, or the entry's prometheusQuery, for this service."""
    if not probes.prometheus_url:
        return None
    template = entry.prometheus_query or probes.prometheus_query
    return Health((check_alerts(probes, render_query(template, entry.service_name)),))


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


def check_http(url: str, ca_bundle: Path | None = None, insecure: bool = False) -> Check:
    """client/http_probe.py's rules: 2xx healthy; any other answer, none, or none whole
    within HTTP_SECONDS unhealthy; an unusable CA_BUNDLE unknown (a setting to fix)."""
    try:
        answer = probe_http(url, HTTP_SECONDS, ca_bundle=ca_bundle, insecure=insecure)
    except ConfigError as exc:
        return Check("http", Outcome.UNKNOWN, str(exc))
    return Check("http", Outcome.HEALTHY if answer.passed else Outcome.UNHEALTHY, answer.detail)


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
