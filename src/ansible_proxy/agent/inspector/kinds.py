"""The inspector's check kinds, in one list: each kind's name, table column, probe and
manifest key. The probes run in this order; the table, the JSON and the textfile
(output.py) show the kinds in it. A new kind is one entry here (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ansible_proxy.agent.inspector import probes
from ansible_proxy.agent.inspector.probes import Probes
from ansible_proxy.agent.inspector.verdicts import Health, Outcome
from ansible_proxy.agent.manifest import HEALTH_URL_KEY, QUERY_KEY, ManagedBinary

Probe = Callable[[Probes, ManagedBinary], "Health | None"]


@dataclass(frozen=True)
class Kind:
    """One kind of check."""

    name: str  # the Check's name: a key of the JSON's `checks`, the textfile's `check` label
    column: str  # its column in the table
    probe: Probe  # what it measured of one service; None when it does not apply to the entry
    manifest_key: str = ""  # the entry key that turns it on or sets it ("": none)


KINDS: tuple[Kind, ...] = (
    Kind("process", "PROCESS", probes.probe_process),  # first: STOPPED ends the check
    Kind("port", "PORT", probes.probe_port, "port"),
    Kind("http", "HTTP", probes.probe_http_url, HEALTH_URL_KEY),
    Kind("image", "IMAGE", probes.probe_image, "image"),
    Kind("alerts", "ALERTS", probes.probe_alerts, QUERY_KEY),  # PROMETHEUS_URL turns it on
)


def check_service(found: Probes, entry: ManagedBinary) -> Health:
    """Every kind that applies to the entry, in order; a program an operator STOPPED
    gets no further check (its port and alerts say nothing while it is stopped)."""
    measured: list[Health] = []
    for kind in KINDS:
        health = kind.probe(found, entry)
        if health is None:
            continue
        measured.append(health)
        if health.outcome == Outcome.STOPPED:
            break
    return Health(
        tuple(check for h in measured for check in h.checks),
        fatal=any(h.fatal for h in measured),
        supervised=all(h.supervised for h in measured),
        running=next((h.running for h in measured if h.running is not None), None),
    )
