"""The cluster tick: keepalive for every node, then each service's rollout, one by one.

One service failing never stops the others. Exit code: 0 all current, 1 a deploy
failed (rolled back), 75 the bin-manager was unreachable (next tick retries).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ansible_proxy import __version__
from ansible_proxy.client.api import Api, make_client
from ansible_proxy.client.logs import Log
from ansible_proxy.cluster import state as cluster_state
from ansible_proxy.cluster.deploy import Rollout, deploy_service
from ansible_proxy.cluster.inventory import Node, load_inventory
from ansible_proxy.cluster.manifests import load_manifests
from ansible_proxy.cluster.packages import Limits
from ansible_proxy.cluster.plan import worse_exit
from ansible_proxy.errors import EXIT_OK, AnsibleProxyError


@dataclass(frozen=True)
class ClusterSettings:
    """Everything one cluster tick needs (from the agent's keys plus the cluster flags)."""

    api: str
    download_base_url: str
    token: str
    ca_bundle: Path | None
    insecure: bool
    http_timeout: float
    lock_dir: Path
    lock_timeout: int
    max_download_bytes: int
    inventory: Path
    manifests: Path
    work_dir: Path
    limits: Limits = field(default_factory=Limits)

    @property
    def state_path(self) -> Path:
        return self.work_dir / "cluster-state.json"

    def __repr__(self) -> str:  # keep the token out of tracebacks
        return f"ClusterSettings(api={self.api!r}, inventory={str(self.inventory)!r}, ...)"


@contextmanager
def api_client(settings: ClusterSettings) -> Iterator[httpx.Client]:
    urls = [settings.api, settings.download_base_url]
    with make_client(
        urls, settings.token, settings.ca_bundle, settings.insecure, settings.http_timeout
    ) as client:
        yield client


def run_cluster(settings: ClusterSettings, log: Log) -> int:
    """One tick over every service of the manifests; the exit code."""
    nodes = load_inventory(settings.inventory)  # both read before anything runs
    services = load_manifests(settings.manifests)
    known = {spec.name for spec in services}
    for node in nodes:
        for service in node.services:
            if service not in known:
                log("warning", f"host {node.name} lists {service}, not in the manifests")
    for sub in ("releases", "runs", "packages"):
        (settings.work_dir / sub).mkdir(parents=True, exist_ok=True)
    settings.lock_dir.mkdir(parents=True, exist_ok=True)
    state = cluster_state.load(settings.state_path)
    worst = EXIT_OK
    with api_client(settings) as client:
        apis = {n.name: Api(client, settings.api, n.node_name, n.cpu_arch) for n in nodes}
        keepalive(nodes, apis)
        for spec in services:
            members = [n for n in nodes if spec.name in n.services]
            if not members:
                continue
            rollout = Rollout(settings, spec, client, apis, state, log)
            try:
                code = deploy_service(rollout, members)
            except AnsibleProxyError as exc:
                log("error" if exc.exit_code != 75 else "warning", str(exc), spec.name)
                code = exc.exit_code
            worst = worse_exit(worst, code)
    return worst


def keepalive(nodes: tuple[Node, ...], apis: dict[str, Api]) -> None:
    """Register (or refresh) every node on the bin-manager on its behalf."""
    for node in nodes:
        apis[node.name].register(
            {
                "cpuArch": node.cpu_arch,
                "osRelease": node.os_release,
                "nodeName": node.node_name,
                "binProxyVersion": __version__,
            }
        )
