"""Pure decisions of a cluster tick: which hosts to deploy, grouped by (arch, sha).

No I/O, no clock: it takes the latest sha per host and the state, and returns groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ansible_proxy.client.history import ERR
from ansible_proxy.cluster.inventory import Node
from ansible_proxy.cluster.state import ClusterState


@dataclass(frozen=True)
class Plan:
    """Hosts to deploy per (arch, sha), and hosts skipped because their target is bad."""

    groups: dict[tuple[str, str], list[Node]] = field(default_factory=dict)
    known_bad: list[tuple[Node, str]] = field(default_factory=list)


def group_hosts(
    service: str, members: Sequence[Node], latest: Mapping[str, str], state: ClusterState
) -> Plan:
    """Hosts not yet at their latest sha, except where that sha already failed."""
    plan = Plan()
    for node in members:
        sha = latest[node.name]
        if state.version(service, node.name) == sha:
            continue
        if state.result(service, node.name, sha) == ERR:
            plan.known_bad.append((node, sha))
            continue
        plan.groups.setdefault((node.cpu_arch, sha), []).append(node)
    return plan


def batches(nodes: Sequence[Node], serial: int) -> list[list[Node]]:
    """`serial` hosts at a time; 0 means all at once."""
    if serial <= 0:
        return [list(nodes)]
    return [list(nodes[i : i + serial]) for i in range(0, len(nodes), serial)]
