"""Inventory (through Ansible's own plugins) and cluster manifests: good files parse,
bad ones give one clear error naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_proxy.cluster.inventory import Node, load_inventory
from ansible_proxy.cluster.manifests import Health, load_manifests
from ansible_proxy.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "cluster"


def test_the_example_inventory_and_manifests_load() -> None:
    nodes = load_inventory(EXAMPLES / "inventory.ini")
    assert nodes[2] == Node(
        name="node-3",
        node_name="node-3",
        address="10.0.0.13",
        cpu_arch="aarch64",
        os_release="Debian GNU/Linux 12 (bookworm)",
        services=("hello",),
    )
    (spec,) = load_manifests(EXAMPLES / "cluster.yaml")
    assert (spec.name, spec.package, spec.rollback) == ("hello", "hello-pkg", "rollback.yml")
    assert spec.health == Health(port=18080, timeout=10.0)


def test_yaml_inventory_with_group_vars(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    web:\n      hosts:\n"
        "        a: {ansible_host: 192.0.2.1, cpu_arch: arm64}\n"
        "      vars: {services: [api, web]}\n"
    )
    (node,) = load_inventory(path)
    assert (node.cpu_arch, node.services, node.node_name) == ("aarch64", ("api", "web"), "a")


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.ini", "[web\nh1 x=\n", "inventory .*bad.ini"),
        ("bad.yml", "all: [1, 2\n", "inventory .*bad.yml"),
        ("arch.ini", "h1 cpu_arch=sparc services=a\n", "host h1: `cpu_arch` must be"),
        ("svc.ini", "h1 cpu_arch=x86_64\n", "host h1: `services` must be a list"),
        ("name.ini", "h1 cpu_arch=x86_64 services='[\"../x\"]'\n", "bad service name"),
        ("node.ini", "h1 cpu_arch=x86_64 services=a node_name=a/b\n", "host h1: invalid node"),
        ("empty.ini", "# nothing\n", "no hosts"),
    ],
)
def test_malformed_inventory_is_one_clear_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_inventory(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("services: [1\n", "not valid YAML"),
        ("nothing: 1\n", "expected a `services:` mapping"),
        ("services:\n  s: {health: {}}\n", "needs a `port` or"),
        ("services:\n  s: {health: {port: 70000}}\n", "1..65535"),
        ("services:\n  s: {health: {port: 1}, playbooks: {deploy: ../x.yml}}\n", "inside"),
        ("services:\n  s: {health: {port: 1}, serial: -1}\n", "serial"),
        ("services:\n  s: {package: 'a b', health: {port: 1}}\n", "bad package name"),
    ],
)
def test_malformed_manifests_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_manifests(path)


def test_node_labels_from_ini_and_yaml_inventories(tmp_path: Path) -> None:
    ini = tmp_path / "hosts.ini"
    ini.write_text(
        "[web]\n"
        "a cpu_arch=x86_64 node_labels=tier=canary,zone=a\n"
        "b cpu_arch=x86_64\n"
        "[web:vars]\nservices=api\n"
    )
    a, b = load_inventory(ini)
    assert a.labels == {"tier": "canary", "zone": "a"}
    assert b.labels == {}
    yml = tmp_path / "hosts.yml"
    yml.write_text(
        "all:\n  hosts:\n"
        "    c: {cpu_arch: arm64, services: [api], node_labels: {tier: canary, rack: 7}}\n"
        "    d: {cpu_arch: arm64, services: [api], node_labels: 'zone=b'}\n"
    )
    c, d = load_inventory(yml)
    assert c.labels == {"tier": "canary", "rack": "7"}
    assert d.labels == {"zone": "b"}


@pytest.mark.parametrize(
    "labels, message",
    [
        ("tier", r"host h1: `node_labels`: label 'tier' has no '='"),
        ("'tier=a,tier=b'", r"host h1: `node_labels`: label 'tier' is given twice"),
        ('\'{"tier": "a b"}\'', r"host h1: `node_labels`: invalid label tier=a b"),
        ("'{\"tier\": True}'", r"host h1: `node_labels` 'tier': the value must be text"),
        ("'[\"tier=a\"]'", r"host h1: `node_labels` must be k=v,k=v or a mapping"),
    ],
)
def test_a_bad_node_labels_names_the_host(tmp_path: Path, labels: str, message: str) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(f"h1 cpu_arch=x86_64 services=a node_labels={labels}\n")
    with pytest.raises(ConfigError, match=message):
        load_inventory(path)
