"""`node_labels` of an inventory host reach the bin-manager with the cluster proxy's
keepalive for that node (no playbook runs: the hosts run no service of the manifests)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cluster.test_cluster_cli import EXAMPLES, cli
from tests.support.server import BinManagerFactory


def test_inventory_node_labels_are_sent_for_each_node(
    tmp_path: Path, bin_manager_factory: BinManagerFactory
) -> None:
    server = bin_manager_factory(node_auth="required")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars: {services: [other], os_release: Debian}\n  hosts:\n"
        "    node-a: {cpu_arch: x86_64, node_labels: {tier: canary, zone: a}}\n"
        "    node-b: {cpu_arch: x86_64, node_labels: 'zone=b'}\n"
        "    node-c: {cpu_arch: aarch64}\n"
    )
    env = {"BIN_MANAGER_API": server.api, "BIN_MANAGER_TOKEN": server.create_proxy("lab")}
    args = ("run", "--inventory", str(inventory), "--manifests", str(EXAMPLES / "cluster.yaml"))
    result = cli(tmp_path, *args, **env)
    assert result.returncode == 0, result.stderr
    nodes = server.admin_get("/nodes").json()["data"]
    assert {n["nodeName"]: n["labels"] for n in nodes} == {
        "node-a": "tier=canary,zone=a",
        "node-b": "zone=b",
        "node-c": "",
    }

    inventory.write_text(inventory.read_text().replace("'zone=b'", "'zone=b c'"))
    bad = cli(tmp_path, *args, **env)
    assert bad.returncode == 2
    assert f"inventory {inventory}: host node-b: `node_labels`: invalid label zone=b c" in (
        bad.stderr
    )
    assert len(bad.stderr.strip().splitlines()) == 1
