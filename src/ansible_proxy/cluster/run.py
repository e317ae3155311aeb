"""The cluster tick: keepalive for every node, then each service's rollout, one by one.

One service failing never stops the others. Exit code: the worst of the services'
(`errors.worst_exit`): 2 configuration, 1 a deploy failed (rolled back), 75 the
bin-manager was unreachable (next tick retries), 0 all current.
"""

from __future__ import annotations

from ansible_proxy.client.api import Api, node_info
from ansible_proxy.client.logs import Log
from ansible_proxy.cluster import state as cluster_state
from ansible_proxy.cluster.deploy import Rollout, deploy_service
from ansible_proxy.cluster.inventory import Node, load_inventory
from ansible_proxy.cluster.manifests import load_manifests
from ansible_proxy.cluster.settings import ClusterSettings, api_client
from ansible_proxy.errors import EXIT_OK, EXIT_RETRY, AnsibleProxyError, worst_exit


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
                log("warning" if exc.exit_code == EXIT_RETRY else "error", str(exc), spec.name)
                code = exc.exit_code
            worst = worst_exit(worst, code)
    return worst


def keepalive(nodes: tuple[Node, ...], apis: dict[str, Api]) -> None:
    """Register (or refresh) every node on the bin-manager on its behalf."""
    for node in nodes:
        info = node_info(node.cpu_arch, node.os_release, node.node_name, node.labels)
        apis[node.name].register(info)
